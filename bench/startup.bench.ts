/**
 * CLI start-up: `kumo --version` and `kumo --help` against a bare `node -e ''` (the floor any
 * Node program pays) in the same run. Target: `kumo --version` well under 150 ms.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, report, timeCommand } from './lib.js';

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'kumo.js');
const N = Number(process.env.BENCH_N ?? 21);

timeCommand([process.execPath, bin, '--version'], 3); // warm the page cache
const base = median(timeCommand([process.execPath, '-e', ''], N));
const ver = median(timeCommand([process.execPath, bin, '--version'], N));
const help = median(timeCommand([process.execPath, bin, '--help'], N));
report(`CLI start-up (${N} runs each, medians)`, [
  { name: "node -e '' (baseline)", medianMs: base },
  { name: 'kumo --version', medianMs: ver, baseline: 'node', ratio: ver / base, note: `kumo's own cost ${(ver - base).toFixed(1)} ms; target < 150 ms total` },
  { name: 'kumo --help', medianMs: help, baseline: 'node', ratio: help / base },
]);
