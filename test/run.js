#!/usr/bin/env node
// Runs the compiled tests with node's built-in test runner.
//   node test/run.js              every test: unit, integration, e2e (VM boots included)
//   node test/run.js unit e2e     only those groups
//   KUMO_TEST_FILTER=seed node test/run.js   only files whose path contains 'seed'
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const groups = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];
const filter = process.env.KUMO_TEST_FILTER;

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
    });
}

const files = groups.flatMap((g) => walk(join(root, 'dist', 'test', g))).filter((f) => !filter || f.includes(filter));
if (!files.length) {
  console.error(`no test files found for ${groups.join(', ')} (did 'npm run build' run?)`);
  process.exit(1);
}
console.log(`running ${files.length} test files: ${groups.join(', ')}`);
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files.map((f) => relative(root, f))], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, KUMO_REPO: root },
});
process.exit(r.status ?? 1);
