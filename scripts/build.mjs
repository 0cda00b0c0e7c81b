#!/usr/bin/env node
// Build kumo: remove dist/ (a stale file of a removed module would still load) and compile with
// the TypeScript compiler from the dev dependencies.
//   node scripts/build.mjs            always (npm run build, prepack)
//   node scripts/build.mjs --prepare  npm's prepare (a clone's npm install, an install from a git
//                                     URL): skipped when prepack builds anyway (npm pack, npm
//                                     publish), and when the dev dependencies are not installed
//                                     (npm ci --omit=dev in a clone that has dist/ already)
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prepare = process.argv.includes('--prepare');
if (prepare && ['pack', 'publish'].includes(process.env.npm_command ?? '')) process.exit(0);
let tsc;
try {
  tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (prepare) {
    console.error('kumo: typescript is not installed (dev dependencies omitted): not building dist/');
    process.exit(0);
  }
  console.error('kumo: cannot build: typescript is not installed; run npm ci (with the dev dependencies) first');
  process.exit(1);
}
rmSync(join(root, 'dist'), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', root], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
