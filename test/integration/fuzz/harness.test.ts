/** The fuzz harness itself can fail: a hang, a promise that never settles and an untyped error are caught and named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './harness.js';

async function selftest(mode: string, stallMs?: number) {
  process.env.KUMO_FUZZ_SELFTEST = mode;
  try {
    return await runFuzz('selftest', stallMs);
  } finally {
    delete process.env.KUMO_FUZZ_SELFTEST;
  }
}

test('a typed error is a pass, counted by its code', async () => {
  const r = await selftest('typed');
  assert.deepEqual(r.tally, { ok: 9, 'typed SELFTEST': 1 });
});

test('an untyped error fails, naming the case and how to reproduce it', async () => {
  await assert.rejects(selftest('type'), /case 3 failed .*TypeError: boom[\s\S]*KUMO_FUZZ_CASE=3/);
});

test('a synchronous endless loop is stopped by the watchdog and named', async () => {
  await assert.rejects(selftest('hang', 1500), /case 3 hung[\s\S]*KUMO_FUZZ_CASE=3/);
});

test('a promise that never settles is caught', async () => {
  await assert.rejects(selftest('never', 1500), /case 3 hung|without finishing, after case 2/);
});
