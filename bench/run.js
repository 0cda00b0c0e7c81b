#!/usr/bin/env node
// Runs the benchmarks (compiled to dist/bench/): `node bench/run.js [name...]`, e.g. `startup seed`.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist', 'bench');
const want = process.argv.slice(2);
const files = readdirSync(dir).filter((f) => f.endsWith('.bench.js') && (!want.length || want.some((w) => f.startsWith(w))));
let failed = 0;
for (const f of files.sort()) {
  console.log(`\n# ${f}`);
  const r = spawnSync(process.execPath, [join(dir, f)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
