/**
 * `kumo image build` end to end with a user element (no kernel, so it is quick): every kind of
 * phase script ran where it should, environment.d was sourced, package-installs.yaml installed,
 * the image was written to --output or registered in the store with its metadata.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, rm, link } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { testCacheDir } from '../../helpers/test-image.js';
import { DISTROS } from '../../../src/builder/distro.js';

const repo = process.env.KUMO_REPO ?? process.cwd();
const MiB = 1024 * 1024;

async function home(): Promise<string> {
  const h = await mkdtemp(join(tmpdir(), 'kumo-build-cli-'));
  const src = join(testCacheDir(), 'build', 'bootstrap');
  const dst = join(h, 'cache', 'build', 'bootstrap');
  await mkdir(dst, { recursive: true });
  if (existsSync(src)) for (const n of readdirSync(src)) if (n.endsWith('.tar')) await link(join(src, n), join(dst, n)).catch(() => {});
  return h;
}

async function userElement(dir: string): Promise<void> {
  const e = join(dir, 'mine');
  for (const p of ['root.d', 'install.d', 'finalise.d', 'cleanup.d', 'environment.d']) await mkdir(join(e, p), { recursive: true });
  await writeFile(join(e, 'environment.d', '10-mine'), 'GREETING="hello from environment.d"\n');
  await writeFile(join(e, 'root.d', '10-outside'), '#!/bin/bash\nset -eu\necho "root.d saw $DISTRO_NAME $DIB_RELEASE" > "$TARGET_ROOT/root-d.txt"\n', { mode: 0o755 });
  await writeFile(join(e, 'install.d', '10-inside'), '#!/bin/bash\nset -eu\ntest ! -e "${TARGET_ROOT:-/nonexistent}/etc" || true\necho "$GREETING" > /install-d.txt\ncommand -v jq > /jq-path.txt\n', { mode: 0o755 });
  await writeFile(join(e, 'finalise.d', '10-inside'), '#!/bin/bash\necho finalised > /finalise-d.txt\n', { mode: 0o755 });
  await writeFile(join(e, 'cleanup.d', '10-outside'), '#!/bin/bash\nrm -f "$TARGET_ROOT/finalise-d.txt"\necho cleaned > "$TARGET_ROOT/cleanup-d.txt"\n', { mode: 0o755 });
  await writeFile(join(e, 'package-installs.yaml'), 'jq:\n');
}

async function readFromImage(disk: string, rootStart: number, work: string, path: string): Promise<string> {
  const part = join(work, 'root.part');
  await run('dd', [`if=${disk}`, `of=${part}`, 'bs=1M', `skip=${rootStart / MiB}`, 'conv=sparse', 'status=none']);
  const r = await run('debugfs', ['-R', `cat ${path}`, part]);
  await rm(part, { force: true });
  return r.stdout;
}

test('kumo image build --output: the phases ran inside and outside the chroot, in order, with the environment', { timeout: 900_000 }, async (t) => {
  const h = await home();
  t.after(() => rm(h, { recursive: true, force: true }));
  await userElement(join(h, 'elements'));
  const out = join(h, 'mine.raw');
  const r = await run(process.execPath, [join(repo, 'bin/kumo.js'), '--home', h, '--json', 'image', 'build', '--element', 'mine', '--elements-path', join(h, 'elements'), '--size', '1G', '--format', 'raw', '-o', out], { allowFailure: true });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.path, out);
  assert.deepEqual(doc.elements, ['debian', 'mine']);
  assert.match(doc.sha256, /^[0-9a-f]{64}$/);
  const pt = JSON.parse((await run('sfdisk', ['--json', out])).stdout).partitiontable;
  const rootStart = pt.partitions[1].start * 512;
  assert.equal((await run('blkid', ['-p', '-O', String(rootStart), '-s', 'LABEL', '-o', 'value', out])).stdout.trim(), 'cloudimg-rootfs');
  assert.equal(await readFromImage(out, rootStart, h, '/root-d.txt'), 'root.d saw debian bookworm\n');
  assert.equal(await readFromImage(out, rootStart, h, '/install-d.txt'), 'hello from environment.d\n');
  assert.equal(await readFromImage(out, rootStart, h, '/jq-path.txt'), '/usr/bin/jq\n');
  assert.equal(await readFromImage(out, rootStart, h, '/cleanup-d.txt'), 'cleaned\n');
  assert.equal(await readFromImage(out, rootStart, h, '/finalise-d.txt'), '', 'cleanup.d ran after finalise.d');
  assert.equal(await readFromImage(out, rootStart, h, '/usr/sbin/policy-rc.d'), '', 'no policy-rc.d left in the image');

  // registered in the store when --output is not given
  const reg = await run(process.execPath, [join(repo, 'bin/kumo.js'), '--home', h, '--json', 'image', 'build', '--element', 'mine', '--elements-path', join(h, 'elements'), '--size', '1G', '--name', 'mine-test'], { allowFailure: true });
  assert.equal(reg.code, 0, reg.stderr);
  const list = await run(process.execPath, [join(repo, 'bin/kumo.js'), '--home', h, '--json', 'image', 'list'], { allowFailure: true });
  assert.match(list.stdout, /mine-test/);
  assert.deepEqual(readdirSync(join(h, 'tmp')).filter((n) => n.startsWith('build-')), [], 'no build file left in tmp');
});

test('kumo image build --distro ubuntu without the Ubuntu keyring is refused before anything is made', { skip: existsSync(DISTROS.ubuntu!.keyring) && 'the Ubuntu keyring is installed on this host' }, async (t) => {
  const h = await mkdtemp(join(tmpdir(), 'kumo-build-keyring-'));
  t.after(() => rm(h, { recursive: true, force: true }));
  const r = await run(process.execPath, [join(repo, 'bin/kumo.js'), '--home', h, '--json', 'image', 'build', '--distro', 'ubuntu', '--name', 'u1'], { allowFailure: true });
  assert.equal(r.code, 6, `${r.stdout}${r.stderr}`); // an environment error
  const err = JSON.parse(r.stdout).error;
  assert.equal(err.code, 'KEYRING_MISSING');
  assert.match(err.message, /ubuntu-archive-keyring\.gpg is not installed/);
  assert.match(err.hint, /apt-get install ubuntu-keyring/);
  // nothing was made: no image, no build log or work folder
  const list = JSON.parse((await run(process.execPath, [join(repo, 'bin/kumo.js'), '--home', h, '--json', 'image', 'list'])).stdout);
  assert.deepEqual(list, []);
  assert.equal(existsSync(join(h, 'cache', 'build', 'work')), false);
});

test('the output temp file cannot be redirected by a planted symlink (the builder runs as root)', { timeout: 900_000 }, async (t) => {
  const h = await home();
  t.after(() => rm(h, { recursive: true, force: true }));
  await userElement(join(h, 'elements'));
  const outDir = join(h, 'out');
  await mkdir(outDir);
  const out = join(outDir, 'mine.qcow2');
  const victim = join(h, 'victim.txt');
  await writeFile(victim, 'precious\n');
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [join(repo, 'bin/kumo.js'), '--home', h, 'image', 'build', '--element', 'mine', '--elements-path', join(h, 'elements'), '--size', '1G', '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  // the name the builder used to write through: .NAME.partial-PID (its pid is known from here)
  const { symlink } = await import('node:fs/promises');
  await symlink(victim, join(outDir, `.mine.qcow2.partial-${child.pid}`));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 0, stderr);
  assert.equal(await readFile(victim, 'utf8'), 'precious\n', 'the file the symlink named was not written');
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', out])).stdout) as { format: string };
  assert.equal(info.format, 'qcow2');
});
