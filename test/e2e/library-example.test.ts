/**
 * The library example (referenced from README.md and docs/instances.md): a test suite gets a
 * disposable VM, runs commands in it, and the VM is deleted when the block ends.
 *
 *   import { launch } from 'kumo';
 *   await using vm = await launch({ image: 'debian-12', userDataText: '#cloud-config\n...' });
 *   const r = await vm.exec('uname -a');
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch } from '../../src/index.js';
import { testImagePath } from '../helpers/test-image.js';

test('library example: await using a launched VM, exec in it, gone afterwards', async () => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-lib-'));
  try {
    {
      await using vm = await launch({
        image: testImagePath(), // an alias such as 'debian-12' works the same way
        home, // leave out to use KUMO_HOME / ~/.local/share/kumo
        memory: '1G',
        userDataText: '#cloud-config\nwrite_files:\n  - path: /etc/motd-kumo\n    content: hi from the library\n',
      });

      const r = await vm.exec('uname -a');
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Linux /);

      const motd = await vm.exec(['cat', '/etc/motd-kumo'], { check: true });
      assert.equal(motd.stdout, 'hi from the library');

      const failing = await vm.exec('exit 3');
      assert.equal(failing.code, 3);

      const st = await vm.status();
      assert.equal(st.state, 'running');
    } // <- Symbol.asyncDispose: the VM is stopped and deleted here
    assert.deepEqual(await readdir(join(home, 'instances')), []);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
