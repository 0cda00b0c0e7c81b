/**
 * Two instances from one base, launched at the same time through the library: both become
 * ready, with their own ssh ports, hostnames and instance-ids, on overlays of the same read-only
 * base, which is left untouched. Boots: 2 (in parallel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { launch, type Instance } from '../../src/instance/index.js';
import { testImagePath } from '../helpers/test-image.js';

test('two instances of one base launched at once', async () => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-par-'));
  const vms: Instance[] = [];
  try {
    const results = await Promise.allSettled(['par-a', 'par-b'].map((name) => launch({ image: testImagePath(), home, name, memory: '768M' })));
    for (const r of results) if (r.status === 'fulfilled') vms.push(r.value);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    const [a, b] = vms as [Instance, Instance];
    const ra = await a.record();
    const rb = await b.record();
    assert.notEqual(ra.ssh.port, rb.ssh.port);
    assert.notEqual(ra.instanceId, rb.instanceId);
    assert.notEqual(ra.mac, rb.mac);
    assert.equal(ra.image.path, rb.image.path);
    const base = ra.image.path;
    const before = await stat(base);
    assert.equal((await a.exec('hostname')).stdout.trim(), 'par-a');
    assert.equal((await b.exec('hostname')).stdout.trim(), 'par-b');
    // writes in one do not show in the other
    await a.exec('echo only-a | sudo tee /var/lib/who >/dev/null && sync', { check: true });
    assert.notEqual((await b.exec('cat /var/lib/who 2>/dev/null || echo none')).stdout.trim(), 'only-a');
    for (const [vm, name] of [[a, 'par-a'], [b, 'par-b']] as const) {
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', join(home, 'instances', name, 'disk.qcow2')]).toString());
      assert.equal(info['backing-filename'], base);
      assert.equal((await vm.status()).state, 'running');
    }
    const after = await stat(base);
    assert.equal(after.mtimeMs, before.mtimeMs, 'the base is never written');
    assert.equal(after.size, before.size);
  } finally {
    await Promise.all(vms.map((v) => v.delete().catch(() => {})));
    const left = await readdir(join(home, 'instances')).catch(() => []);
    await rm(home, { recursive: true, force: true });
    assert.deepEqual(left, []);
  }
});
