#!/usr/bin/env node
// Runs the compiled tests with node's built-in test runner, one group after the other (unit,
// then integration, then e2e: a group runs only when the ones before it passed), and prints each
// test file's duration, the slowest first, and one closing line with the counts.
//   node test/run.js              every test: unit, integration, e2e (VM boots included)
//   node test/run.js unit e2e     only those groups
//   KUMO_TEST_FILTER=seed node test/run.js   only files whose path contains 'seed'
//   KUMO_TEST_FILTER=reset,disposable ...      files whose path contains any of these
import { readdirSync, statSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const groups = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];
const filters = (process.env.KUMO_TEST_FILTER ?? '').split(',').filter(Boolean);

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
    });
}

/**
 * How each group runs: files at once (--test-concurrency) and the time-out of one test (a test
 * may set a longer one itself). e2e files boot VMs under TCG on 2 cores: one file at a time, the
 * longest first (so a failure in the slowest one shows early and nothing waits behind it), each
 * file in a runner of its own (node sorts the files one runner is given).
 */
const RUN = {
  unit: { concurrency: 2, timeoutMs: 120_000 },
  integration: { concurrency: 1, timeoutMs: 900_000 },
  e2e: { concurrency: 1, timeoutMs: 2_400_000, first: ['golden', 'warm', 'libvirt', 'qemu-lifecycle', 'qemu-parallel', 'build-boot'] },
};
function ordered(group, files) {
  const first = RUN[group]?.first ?? [];
  const rank = (f) => {
    const i = first.findIndex((n) => f.endsWith(`/${n}.test.js`));
    return i < 0 ? first.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const byGroup = groups.map((g) => [g, ordered(g, walk(join(root, 'dist', 'test', g)).filter((f) => !filters.length || filters.some((s) => f.includes(s))))]);
const total = byGroup.reduce((n, [, f]) => n + f.length, 0);
if (!total) {
  console.error(`no test files found for ${groups.join(', ')} (did 'npm run build' run?)`);
  process.exit(1);
}
console.log(`running ${total} test files: ${groups.join(', ')}`);

// Test servers listen on 127.0.0.1: a proxy the developer has set (HTTP_PROXY, ...) must not see
// that traffic, so loopback goes direct (both spellings: the lower-case one wins, as in curl).
// Tests of proxies set every proxy variable themselves (test/integration/image/proxy.test.ts).
const noProxy = [process.env.no_proxy || process.env.NO_PROXY, '127.0.0.1', 'localhost', '::1'].filter(Boolean).join(',');
const testEnv = { ...process.env, KUMO_REPO: root, no_proxy: noProxy, NO_PROXY: noProxy };

const tmp = mkdtempSync(join(tmpdir(), 'kumo-test-run-'));
// The kumo home of the warm template that e2e files which do not test booting share
// (test/helpers/warm-home.ts): the first such file makes the template, the others clone it.
const warmHome = join(tmp, 'warm-home');
testEnv.KUMO_E2E_WARM_HOME = warmHome;
const results = [];
let status = 0;
let stoppedAt;
for (const [group, files] of byGroup) {
  if (!files.length) continue;
  if (status !== 0) {
    stoppedAt ??= group;
    continue;
  }
  console.log(`\n== ${group}: ${files.length} files`);
  // node's runner sorts the files it is given: a group with an order of its own runs one file per
  // invocation, in that order (and goes on past a failed file, so every failure shows)
  const batches = RUN[group]?.first ? files.map((f) => [f]) : [files];
  for (const [i, batch] of batches.entries()) {
    const out = join(tmp, `${group}-${i}.jsonl`);
    const r = spawnSync(
      process.execPath,
      [
        '--test',
        `--test-concurrency=${RUN[group]?.concurrency ?? 1}`,
        `--test-timeout=${RUN[group]?.timeoutMs ?? 900_000}`,
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        `--test-reporter=${join(root, 'test', 'durations-reporter.js')}`,
        `--test-reporter-destination=${out}`,
        ...batch.map((f) => relative(root, f)),
      ],
      { cwd: root, stdio: 'inherit', env: testEnv },
    );
    if ((r.status ?? 1) !== 0) status = r.status ?? 1;
    if (existsSync(out))
      for (const l of readFileSync(out, 'utf8').split('\n').filter(Boolean)) results.push({ group, ...JSON.parse(l) });
  }
}
if (existsSync(warmHome))
  spawnSync(process.execPath, [join(root, 'bin', 'kumo.js'), 'delete', '--all', '--force'], { env: { ...testEnv, KUMO_HOME: warmHome }, stdio: 'ignore' });
rmSync(tmp, { recursive: true, force: true });

const sec = (ms) => (ms === undefined ? '   ?' : (ms / 1000).toFixed(1).padStart(6));
console.log('\ntest files by duration (seconds, slowest first):');
for (const r of [...results].sort((a, b) => (b.ms ?? 0) - (a.ms ?? 0)))
  console.log(`${sec(r.ms)}  ${relative(root, r.file)}${r.failed ? `  (${r.failed} failed)` : ''}`);
const sum = (k) => results.reduce((n, r) => n + r[k], 0);
console.log(`all files: ${sec(results.reduce((n, r) => n + (r.ms ?? 0), 0)).trim()} s`);
if (stoppedAt) console.log(`not run: ${groups.slice(groups.indexOf(stoppedAt)).join(', ')} (an earlier group failed)`);
console.log(`tests: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
process.exit(status);
