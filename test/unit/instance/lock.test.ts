import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
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
    let released = false;
    setTimeout(() => {
      released = true;
      void l.release();
    }, 150);
    const l2 = await acquireLock(p, { op: 'b', what: 'x', waitMs: 5000 });
    assert.equal(released, true, 'the waiter got the lock only after the holder released it');
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

test('a stale lock being broken by nobody: a dead breaker is removed at once; an unreadable young one is waited for only as long as the caller allows', () =>
  withDir(async (d) => {
    const p = join(d, 'lock');
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.on('close', r));
    const ghost = JSON.stringify({ pid: dead.pid, op: 'create', at: 'then' });
    // The breaker of a process that died while breaking: removed, the lock taken.
    await writeFile(p, ghost);
    await writeFile(`${p}.break`, JSON.stringify({ pid: dead.pid, op: 'create', at: 'then', id: 'x' }));
    const l = await acquireLock(p, { op: 'delete', what: "instance 'web'" });
    assert.equal(JSON.parse(await readFile(p, 'utf8')).pid, process.pid);
    assert.equal(existsSync(`${p}.break`), false);
    await l.release();
    // An empty breaker (an older kumo's, just made): the caller's wait limit holds, it is not ignored.
    await writeFile(p, ghost);
    await writeFile(`${p}.break`, '');
    await assert.rejects(acquireLock(p, { op: 'delete', what: "instance 'web'", waitMs: 300 }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'LOCKED');
      assert.match(e.message, /instance 'web' is busy/);
      return true;
    });
    // A caller that aborts is not kept spinning either.
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await assert.rejects(acquireLock(p, { op: 'delete', what: 'x', waitMs: 60_000, signal: ac.signal }), (e: Error & { code?: string }) => e.code === 'INTERRUPTED');
  }));

test('the lock file is made whole: it holds its owner from the moment it exists, and no temp file is left beside it', () =>
  withDir(async (d) => {
    const p = join(d, 'lock');
    const l = await acquireLock(p, { op: 'create', what: 'x' });
    const o = JSON.parse(await readFile(p, 'utf8')) as { pid: number; id?: string };
    assert.equal(o.pid, process.pid);
    assert.match(o.id ?? '', /^[0-9a-f]{16}$/);
    assert.deepEqual(await readdir(d), ['lock']);
    await l.release();
    assert.deepEqual(await readdir(d), []);
  }));
