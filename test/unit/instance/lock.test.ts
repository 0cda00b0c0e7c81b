import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { acquireLock, lockHolder, processStartTime } from '../../../src/core/lock.js';

const LOCK_JS = fileURLToPath(new URL('../../../src/core/lock.js', import.meta.url));

async function withDir(fn: (d: string) => Promise<void>) {
  const d = await mkdtemp(join(tmpdir(), 'kumo-lock-'));
  try {
    await fn(d);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
}

test('a held lock is refused with who holds it; released, it can be taken again', () =>
  withDir(async (d) => {
    const p = join(d, 'lock');
    const l = await acquireLock(p, { op: 'create', what: "instance 'web'" });
    await assert.rejects(acquireLock(p, { op: 'stop', what: "instance 'web'" }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'LOCKED');
      assert.match(e.message, new RegExp(`instance 'web' is busy: process ${process.pid} is running 'create'`));
      return true;
    });
    assert.equal((await lockHolder(p))?.op, 'create');
    await l.release();
    assert.equal(await lockHolder(p), undefined);
    {
      await using _again = await acquireLock(p, { op: 'stop', what: 'x' });
      assert.equal((await lockHolder(p))?.op, 'stop');
    }
    assert.equal(await lockHolder(p), undefined, 'await using released it');
  }));

test('a waiter gets the lock when the holder releases it', () =>
  withDir(async (d) => {
    const p = join(d, 'lock');
    const l = await acquireLock(p, { op: 'a', what: 'x' });
    setTimeout(() => void l.release(), 150);
    const t0 = Date.now();
    const l2 = await acquireLock(p, { op: 'b', what: 'x', waitMs: 5000 });
    assert.ok(Date.now() - t0 >= 100);
    await l2.release();
  }));

test('a stale lock (dead owner, or a recycled pid) is broken', () =>
  withDir(async (d) => {
    const p = join(d, 'lock');
    // a pid that is certainly not running
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('close', r));
    await writeFile(p, JSON.stringify({ pid: dead.pid, op: 'create', at: 'then' }));
    const l = await acquireLock(p, { op: 'delete', what: 'x' });
    assert.equal(JSON.parse(await readFile(p, 'utf8')).pid, process.pid);
    await l.release();
    // our own pid but another start time: the pid was recycled
    await writeFile(p, JSON.stringify({ pid: process.pid, start: (processStartTime(process.pid) ?? 0) + 1, op: 'create', at: 'then' }));
    const l2 = await acquireLock(p, { op: 'delete', what: 'x' });
    await l2.release();
    // garbage in the lock file counts as dead
    await writeFile(p, '{not json');
    const l3 = await acquireLock(p, { op: 'delete', what: 'x' });
    await l3.release();
  }));

test('across processes: of 6 racing for one lock (even a stale one), exactly one wins', () =>
  withDir(async (d) => {
    const p = join(d, 'lock');
    await writeFile(p, JSON.stringify({ pid: 999_999_99, op: 'ghost', at: 'then' }));
    const script = `
      import { acquireLock } from ${JSON.stringify(LOCK_JS)};
      try { await acquireLock(${JSON.stringify(p)}, { op: 'race', what: 'x' }); console.log('won'); setTimeout(() => {}, 1500); }
      catch (e) { console.log(e.code); }`;
    const outs = await Promise.all(
      Array.from({ length: 6 }, () =>
        new Promise<string>((resolve) => {
          const c = spawn(process.execPath, ['--input-type=module', '-e', script]);
          let o = '';
          c.stdout.on('data', (x) => (o += x));
          c.on('close', () => resolve(o.trim()));
        }),
      ),
    );
    assert.equal(outs.filter((o) => o === 'won').length, 1, outs.join(','));
    assert.equal(outs.filter((o) => o === 'LOCKED').length, 5, outs.join(','));
  }));
