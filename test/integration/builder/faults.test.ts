/**
 * Builds that fail or are interrupted leave nothing behind: no mounts, no loop devices, no
 * chroot processes, no work folder, no output. Uses the cached bootstrap of the test image when
 * there is one (hard-linked into a temp cache), else bootstraps (slower).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm, readdir, readFile, link } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../../src/builder/index.js';
import { run } from '../../../src/core/exec.js';
import { isKumoError } from '../../../src/core/errors.js';
import { testCacheDir } from '../../helpers/test-image.js';

const repo = process.env.KUMO_REPO ?? process.cwd();

async function tempCache(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-build-faults-'));
  const src = join(testCacheDir(), 'build', 'bootstrap');
  if (existsSync(src)) {
    await mkdir(join(dir, 'bootstrap'), { recursive: true });
    for (const n of readdirSync(src)) if (n.endsWith('.tar')) await link(join(src, n), join(dir, 'bootstrap', n)).catch(() => {});
  }
  return dir;
}

async function element(base: string, name: string, phase: string, script: string): Promise<void> {
  await mkdir(join(base, name, phase), { recursive: true });
  await writeFile(join(base, name, phase, '50-script'), script, { mode: 0o755 });
}

/** Processes whose command line holds `marker`. */
function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(marker)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function assertNothingLeft(cache: string, output: string, marker?: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(cache));
  assert.deepEqual(mounts, [], 'no mounts left under the build cache');
  const loops = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => l.includes(cache));
  assert.deepEqual(loops, [], 'no loop devices');
  assert.deepEqual(await readdir(join(cache, 'work')).catch(() => []), [], 'no work folder left');
  assert.equal(existsSync(output), false, 'no output file');
  const dir = join(output, '..');
  assert.deepEqual((await readdir(dir)).filter((n) => n.includes('partial')), [], 'no partial output');
  if (marker) assert.deepEqual(processesWith(marker), [], 'no process of the chroot left');
}

test('unknown elements and cycles fail before anything is made', async (t) => {
  const cache = await tempCache();
  t.after(() => rm(cache, { recursive: true, force: true }));
  const out = join(cache, 'out.qcow2');
  await assert.rejects(buildImage({ elements: ['vm', 'cloud-int'], output: out, cacheDir: cache }), (e: unknown) => isKumoError(e) && e.code === 'UNKNOWN_ELEMENT' && /did you mean 'cloud-init'/.test(e.message));
  const els = join(cache, 'elements');
  await mkdir(join(els, 'x'), { recursive: true });
  await mkdir(join(els, 'y'), { recursive: true });
  await writeFile(join(els, 'x', 'element-deps'), 'y\n');
  await writeFile(join(els, 'y', 'element-deps'), 'x\n');
  await assert.rejects(buildImage({ elements: ['x'], elementsPath: [els], output: out, cacheDir: cache }), /element-deps form a cycle: x -> y -> x/);
  assert.equal(existsSync(out), false);
});

test('a failing in-chroot script is named with its last lines; its background process, mounts and tree are gone', { timeout: 900_000 }, async (t) => {
  const cache = await tempCache();
  t.after(() => rm(cache, { recursive: true, force: true }));
  const els = join(cache, 'elements');
  const marker = `86${Math.floor(Math.random() * 1e4)}`;
  await element(els, 'broken', 'install.d', `#!/bin/bash\nsleep ${marker} &\necho "about to fail"\necho "the reason: no widget" >&2\nexit 3\n`);
  const out = join(cache, 'out.qcow2');
  const err = await buildImage({ elements: ['broken'], elementsPath: [els], output: out, cacheDir: cache }).then(
    () => assert.fail('the build should fail'),
    (e: unknown) => e,
  );
  assert.ok(isKumoError(err));
  assert.equal(err.code, 'BUILD_SCRIPT_FAILED');
  assert.match(err.message, /element 'broken' script install.d\/50-script failed \(exit status 3\)/);
  assert.match(err.message, /the reason: no widget/);
  assert.match(err.hint ?? '', /full build log is .*\.log/);
  const log = (err.details as { logFile: string }).logFile;
  assert.match(await readFile(log, 'utf8'), /about to fail/);
  await assertNothingLeft(cache, out, marker);
});

test('SIGTERM in the middle of a build (kumo image build): exit as interrupted, nothing left behind', { timeout: 900_000 }, async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-build-sigterm-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  const cache = join(home, 'cache', 'build');
  const seeded = await tempCache();
  await mkdir(cache, { recursive: true });
  await run('cp', ['-al', join(seeded, 'bootstrap'), join(cache, 'bootstrap')]).catch(() => {});
  await rm(seeded, { recursive: true, force: true });
  const els = join(home, 'elements');
  const marker = `87${Math.floor(Math.random() * 1e4)}`;
  await element(els, 'slow', 'root.d', `#!/bin/bash\necho slow-started\nsleep ${marker}\n`);
  const out = join(home, 'out.raw');
  const child = spawn(process.execPath, [join(repo, 'bin/kumo.js'), '--home', home, 'image', 'build', '--element', 'slow', '--elements-path', els, '--format', 'raw', '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', () => {});
  const deadline = Date.now() + 600_000;
  while (processesWith(marker).length === 0) {
    assert.ok(Date.now() < deadline, `the slow script never started: ${stderr}`);
    assert.equal(child.exitCode, null, `kumo exited early: ${stderr}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 130, stderr); // interrupted
  assert.match(stderr, /interrupted/i);
  await new Promise((r) => setTimeout(r, 500));
  await assertNothingLeft(cache, out, marker);
});

test('an unreachable mirror is a clear error before anything is bootstrapped', async (t) => {
  const cache = await mkdtemp(join(tmpdir(), 'kumo-build-mirror-'));
  t.after(() => rm(cache, { recursive: true, force: true }));
  const out = join(cache, 'out.qcow2');
  await assert.rejects(
    buildImage({ mirror: 'http://127.0.0.1:9/debian', noCache: true, output: out, cacheDir: cache }),
    (e: unknown) => isKumoError(e) && e.code === 'MIRROR_UNREACHABLE' && e.message.includes('http://127.0.0.1:9/debian') && /--mirror/.test(e.hint ?? ''),
  );
  await assertNothingLeft(cache, out);
});

test('not root: kumo image build says it needs root', async (t) => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-build-noroot-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  await run('chmod', ['0777', home]);
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(repo, 'bin/kumo.js'), '--home', home, 'image', 'build', '-o', join(home, 'x.qcow2')], {
    allowFailure: true,
    env: { ...process.env, HOME: home },
  });
  assert.equal(r.code, 6, r.stderr); // an environment error
  assert.match(r.stderr, /needs root/);
  assert.equal(existsSync(join(home, 'x.qcow2')), false);
});

test('disk full: a clear DISK_FULL error and nothing left behind (cache on a 64 MiB tmpfs)', { timeout: 300_000 }, async (t) => {
  const src = join(testCacheDir(), 'build', 'bootstrap');
  const tars = existsSync(src) ? readdirSync(src).filter((n) => n.endsWith('.tar')) : [];
  if (!tars.length) return t.skip('needs the cached bootstrap of the test image (node dist/test/fixtures/test-image.js)');
  const cache = await mkdtemp(join(tmpdir(), 'kumo-build-full-'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', cache]);
  t.after(async () => {
    await run('umount', [cache], { allowFailure: true });
    await rm(cache, { recursive: true, force: true });
  });
  await mkdir(join(cache, 'bootstrap'));
  for (const n of tars) await run('ln', ['-s', join(src, n), join(cache, 'bootstrap', n)]);
  const out = join(cache, 'out.qcow2');
  await assert.rejects(
    buildImage({ elements: ['vm'], output: out, cacheDir: cache }),
    (e: unknown) => isKumoError(e) && e.code === 'DISK_FULL' && /no space left on device/.test(e.message),
  );
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(cache + '/'));
  assert.deepEqual(mounts, [], 'nothing mounted below the cache');
  assert.deepEqual(await readdir(join(cache, 'work')), [], 'no work folder left');
  assert.equal(existsSync(out), false);
});
