/** The worker side of harness.ts: runs one target's cases and reports each one's outcome. */
import { parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { KumoError } from '../../../src/core/errors.js';
import { caseSeed, prng, type FuzzTarget } from './harness.js';

const { target, seed, long, only } = workerData as { target: string; seed: number; long: boolean; only?: number };
const t = (await import(pathToFileURL(target).href)).default as FuzzTarget;
const ctx = t.setup ? await t.setup() : undefined;
const n = long ? t.longCases : t.cases;
const tally: Record<string, number> = {};
let failed = false;
for (let i = only ?? 0; i < (only !== undefined ? only + 1 : n); i++) {
  parentPort!.postMessage({ kind: 'progress', i: i - 1 });
  try {
    const word = (await t.run(prng(caseSeed(seed, i)), ctx, i)) ?? 'ok';
    tally[word] = (tally[word] ?? 0) + 1;
  } catch (e) {
    // fsError() wraps anything that is not an errno error as IO_ERROR: a TypeError or RangeError
    // under that label is a bug in kumo, not a typed refusal.
    const cause = (e as { cause?: unknown }).cause;
    const wrappedBug = e instanceof KumoError && e.code === 'IO_ERROR' && cause instanceof Error && typeof (cause as NodeJS.ErrnoException).code !== 'string';
    if (e instanceof KumoError && !wrappedBug) {
      tally[`typed ${e.code}`] = (tally[`typed ${e.code}`] ?? 0) + 1;
      continue;
    }
    const shown = wrappedBug ? cause : e;
    parentPort!.postMessage({ kind: 'fail', i, error: (wrappedBug ? 'wrapped as IO_ERROR: ' : '') + (shown instanceof Error ? (shown.stack ?? shown.message) : String(shown)) });
    failed = true;
    break;
  }
}
if (t.teardown) await t.teardown(ctx);
if (!failed) parentPort!.postMessage({ kind: 'done', cases: only !== undefined ? 1 : n, tally });
