/**
 * A seeded fuzz harness. A target (a module under targets/ whose default export is a FuzzTarget)
 * runs its cases in a worker thread; the main thread watches the worker's heartbeat, so a case
 * that loops forever (even synchronously) is caught, the worker terminated and the case named.
 *
 * Invariant checked for every case: the code under test returns, or throws a KumoError (a typed
 * error); anything else (a TypeError, a RangeError, a plain Error, a hang) fails the test with the
 * seed and the case number. A target may also check properties of what it got back and throw a
 * FuzzPropertyError (which is no KumoError, so it fails).
 *
 * Environment:
 *   KUMO_FUZZ_SEED=N     the run's seed (default: a random one, printed)
 *   KUMO_FUZZ_CASE=I     run only case I of that seed (to reproduce a failure)
 *   KUMO_FUZZ_LONG=1     the long mode: each target's `longCases` (10,000 or more) instead of `cases`
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

export type Rng = () => number;

export interface FuzzTarget<C = unknown> {
  /** Cases in CI (a few thousand) and in the long mode (10,000+). */
  cases: number;
  longCases: number;
  /** Made once per worker (temp folders, a template file); torn down at the end. */
  setup?: () => Promise<C>;
  teardown?: (ctx: C) => Promise<void>;
  /** One case: draws its input from `r`; returns a word for the tally ("typed", "ok", ...). */
  run: (r: Rng, ctx: C, index: number) => Promise<string | void>;
}

/** A broken property of a result (not a KumoError, so the harness reports it). */
export class FuzzPropertyError extends Error {}

/** mulberry32 */
export function prng(seed: number): Rng {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of case `i` of a run seeded `seed` (each case reproduces alone). */
export function caseSeed(seed: number, i: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(i + 1, 0xc2b2ae35)) >>> 0;
}

export const int = (r: Rng, n: number): number => Math.floor(r() * n);
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)]!;
export function bytes(r: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
}

/** A few kinds of awkward numbers: small, boundaries, huge, negative, fractional, NaN. */
export function wildNumber(r: Rng): number {
  return pick(r, [0, 1, -1, 2, 7, 63, 64, 65, 255, 256, 511, 512, 1023, 1024, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1.5, -0.5, Number.NaN, Number.POSITIVE_INFINITY, int(r, 100000)]);
}

/** Text with awkward characters: control bytes, quotes, YAML and shell punctuation, unicode, NUL. */
export function wildString(r: Rng, max = 40): string {
  const parts = ['a', 'Z', '0', '9', '-', '_', '.', '/', '..', ':', ',', ' ', '\t', '\n', '\r', '\0', '"', "'", '\\', '$', '`', '#', '&', '*', '!', '|', '>', '{', '}', '[', ']', '%', '@', '=', '?', 'é', '中', '\u202e', '\ud800', '\ufeff', '__proto__', 'constructor', 'G', 'M', 'k', 'ms', 's'];
  let s = '';
  const n = int(r, max);
  for (let i = 0; i < n; i++) s += pick(r, parts);
  return s;
}

export interface FuzzResult {
  seed: number;
  cases: number;
  tally: Record<string, number>;
}

/**
 * Run the target in `targets/NAME.js` (compiled beside this file). Rejects naming the seed, the
 * case and the error when a case throws anything but a KumoError or stalls for `stallMs`.
 */
export function runFuzz(name: string, stallMs = 20_000): Promise<FuzzResult> {
  const seed = process.env.KUMO_FUZZ_SEED !== undefined ? Number(process.env.KUMO_FUZZ_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
  const only = process.env.KUMO_FUZZ_CASE !== undefined ? Number(process.env.KUMO_FUZZ_CASE) : undefined;
  const long = process.env.KUMO_FUZZ_LONG === '1';
  const target = fileURLToPath(new URL(`./targets/${name}.js`, import.meta.url));
  const worker = new Worker(fileURLToPath(new URL('./worker.js', import.meta.url)), { workerData: { target, seed, long, only } });
  const repro = (i?: number) => `KUMO_FUZZ_SEED=${seed}${i !== undefined ? ` KUMO_FUZZ_CASE=${i}` : ''} KUMO_TEST_FILTER=fuzz/${name} node test/run.js integration`;
  console.log(`fuzz ${name}: seed ${seed} (reproduce: ${repro()})`);
  return new Promise((resolve, reject) => {
    let last = -1;
    let settled = false;
    let beat = Date.now();
    const timer = setInterval(() => {
      if (Date.now() - beat > stallMs) {
        clearInterval(timer);
        void worker.terminate();
        reject(new Error(`fuzz ${name}: case ${last + 1} hung (no progress for ${stallMs / 1000} s); reproduce: ${repro(last + 1)}`));
      }
    }, 250);
    worker.on('message', (m: { kind: 'progress'; i: number } | { kind: 'fail'; i: number; error: string } | { kind: 'done'; cases: number; tally: Record<string, number> }) => {
      beat = Date.now();
      if (m.kind === 'progress') last = m.i;
      else if (m.kind === 'fail') {
        clearInterval(timer);
        void worker.terminate();
        reject(new Error(`fuzz ${name}: case ${m.i} failed (seed ${seed}): ${m.error}\nreproduce: ${repro(m.i)}`));
      } else {
        clearInterval(timer);
        settled = true;
        resolve({ seed, cases: m.cases, tally: m.tally });
      }
    });
    worker.on('error', (e) => {
      clearInterval(timer);
      reject(new Error(`fuzz ${name}: the worker died after case ${last} (seed ${seed}): ${e.stack ?? e}\nreproduce: ${repro(last + 1)}`));
    });
    worker.on('exit', (code) => {
      clearInterval(timer);
      if (!settled) reject(new Error(`fuzz ${name}: the worker exited (code ${code}) without finishing, after case ${last} (a promise that never settles?) (seed ${seed}); reproduce: ${repro(last + 1)}`));
    });
  });
}
