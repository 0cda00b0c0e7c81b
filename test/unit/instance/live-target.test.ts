import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlPathIn } from '../../../src/guest/master.js';
import { liveSharedTarget } from '../../../src/instance/live-target.js';
import { sshTargetFor } from '../../../src/instance/ssh-target.js';

test('kumo exec fast path: a live master gives the same target as the record; no master, no shortcut', async () => {
  const base = await mkdtemp(join(tmpdir(), 'km-'));
  const saved = process.env.KUMO_RUNTIME_DIR;
  process.env.KUMO_RUNTIME_DIR = join(base, 'rt');
  const srv = createServer((s) => s.destroy());
  try {
    const paths = { instances: join(base, 'instances') } as Parameters<typeof liveSharedTarget>[0];
    const rec = { name: 'web', driver: 'qemu', ssh: { user: 'kumo', port: 40022, key: '/k/id' } };
    await mkdir(join(base, 'instances', 'web'), { recursive: true });
    await writeFile(join(base, 'instances', 'web', 'instance.json'), JSON.stringify(rec));
    assert.equal(await liveSharedTarget(paths, 'web'), undefined, 'no master');
    const want = sshTargetFor(paths, rec as Parameters<typeof sshTargetFor>[1]);
    await new Promise<void>((r) => srv.listen(controlPathIn(join(base, 'rt'), want)!, r));
    assert.deepEqual(await liveSharedTarget(paths, 'web'), want);
    assert.equal(await liveSharedTarget(paths, 'Bad/Name'), undefined);
    await writeFile(join(base, 'instances', 'web', 'instance.json'), JSON.stringify({ ...rec, driver: 'libvirt' }));
    assert.equal(await liveSharedTarget(paths, 'web'), undefined, 'other drivers take the full path');
  } finally {
    srv.close();
    if (saved === undefined) delete process.env.KUMO_RUNTIME_DIR;
    else process.env.KUMO_RUNTIME_DIR = saved;
    await rm(base, { recursive: true, force: true });
  }
});
