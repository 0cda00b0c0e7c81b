/**
 * The cross-process lock under real contention: several processes take and release one lock many
 * times, each checking while it holds the lock that nobody else does (an O_EXCL marker file and a
 * shared counter that a double hold would lose an increment of); a watcher process reads the lock
 * file all along and must never find it without its owner. A bounded count, no timing assertions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LOCK_JS = fileURLToPath(new URL('../../../src/core/lock.js', import.meta.url));
const WORKERS = 4;
const ROUNDS = 500; // 2,000 acquisitions in all

function runNode(script: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script]);
    let out = '';
    let err = '';
    c.stdout.on('data', (x) => (out += x));
    c.stderr.on('data', (x) => (err += x));
    c.on('close', (code) => resolve({ code, out: out.trim(), err }));
  });
}

test(`${WORKERS} processes x ${ROUNDS} acquisitions of one lock: never held twice, the lock file never seen without its owner`, async () => {
  const d = await mkdtemp(join(tmpdir(), 'kumo-lock-contention-'));
  try {
    const lock = join(d, 'lock');
    const marker = join(d, 'held');
    const counter = join(d, 'counter');
    const done = join(d, 'done');
    await writeFile(counter, '0');
    const worker = `
      import { acquireLock } from ${JSON.stringify(LOCK_JS)};
      import { openSync, closeSync, unlinkSync, readFileSync, writeFileSync } from 'node:fs';
      let doubles = 0;
      for (let i = 0; i < ${ROUNDS}; i++) {
        const l = await acquireLock(${JSON.stringify(lock)}, { op: 'contend', what: 'x', waitMs: 600000 });
        let mine = false;
        try { closeSync(openSync(${JSON.stringify(marker)}, 'wx')); mine = true; } catch { doubles++; }
        const n = Number(readFileSync(${JSON.stringify(counter)}, 'utf8'));
        await new Promise((r) => setImmediate(r));
        writeFileSync(${JSON.stringify(counter)}, String(n + 1));
        if (mine) unlinkSync(${JSON.stringify(marker)});
        await l.release();
      }
      console.log(JSON.stringify({ doubles }));`;
    const watcher = `
      import { readFileSync, existsSync } from 'node:fs';
      let reads = 0, ownerless = 0;
      while (!existsSync(${JSON.stringify(done)})) {
        let t;
        try { t = readFileSync(${JSON.stringify(lock)}, 'utf8'); } catch { continue; }
        reads++;
        try { if (typeof JSON.parse(t).pid !== 'number') ownerless++; } catch { ownerless++; }
      }
      console.log(JSON.stringify({ reads, ownerless }));`;
    const w = runNode(watcher);
    const results = await Promise.all(Array.from({ length: WORKERS }, () => runNode(worker)));
    await writeFile(done, '');
    const wr = await w;
    for (const r of results) assert.equal(r.code, 0, r.err);
    const doubles = results.reduce((n, r) => n + (JSON.parse(r.out) as { doubles: number }).doubles, 0);
    const watched = JSON.parse(wr.out) as { reads: number; ownerless: number };
    assert.equal(watched.ownerless, 0, `the lock file was read ${watched.ownerless} times (of ${watched.reads}) without its owner`);
    assert.equal(doubles, 0, `${doubles} acquisitions found the lock held by another process`);
    assert.equal(Number(await readFile(counter, 'utf8')), WORKERS * ROUNDS, 'no increment was lost to a double hold');
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
