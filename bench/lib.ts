/**
 * Shared helpers for benchmarks: run a thing N times, report medians and ratios against a
 * baseline measured in the same run. No thresholds: numbers are printed, not asserted.
 */
import { spawnSync } from 'node:child_process';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Time a synchronous command N times (wall clock, ms). */
export function timeCommand(argv: string[], n: number, env?: NodeJS.ProcessEnv): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', env: env ?? process.env });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status}`);
    out.push(ms);
  }
  return out;
}

/** Time an async function N times (ms). */
export async function timeAsync(fn: () => Promise<unknown>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

export interface Row {
  name: string;
  medianMs: number;
  baseline?: string;
  ratio?: number;
  note?: string;
}

export function report(title: string, rows: Row[]): void {
  console.log(`\n## ${title}`);
  for (const r of rows) {
    const ratio = r.ratio !== undefined ? `  ratio ${r.ratio.toFixed(2)} vs ${r.baseline}` : '';
    console.log(`${r.name.padEnd(48)} median ${r.medianMs.toFixed(1).padStart(9)} ms${ratio}${r.note ? `  (${r.note})` : ''}`);
  }
}
