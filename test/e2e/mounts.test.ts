/**
 * Shared folders on a real guest (the test image). Boots: 1, launched with the CLI: a spec file
 * with a read-only mount at /ro and a --mount flag (a read-write folder at its host path), both
 * virtiofs by kumo's choice (kumo runs as root here, where QEMU 7.2's virtiofsd runs).
 *   - a file written on the host is read in the guest (before boot and while it runs), and one
 *     written in the guest is read on the host, owned by the guest user's uid (virtiofs passes
 *     ids through; when kumo runs unprivileged the guest user gets the host user's uid);
 *   - the :ro folder refuses writes in the guest (mounted ro) and its files are readable;
 *   - a symlink in the shared folder pointing outside it (absolute or ../) does not expose the
 *     host file; `..` from the mount's root is the guest's own folder; a hard link from the
 *     guest's files into the folder is refused (another file system);
 *
 * 9p is not booted here: the test image runs Debian's cloud kernel, which has no 9p (a 9p mount
 * makes cloud-init's `mount -a` fail, and the launch with it); test/integration/driver/virtiofs
 * checks that QEMU takes kumo's 9p devices.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getInstance, type Instance } from '../../src/index.js';
import { kumo } from '../helpers/cli.js';
import { testImagePath } from '../helpers/test-image.js';

let home = '';
let work = '';
let rw = '';
let ro = '';
let vm: Instance;
const secret = `secret-${randomBytes(8).toString('hex')}`;
const name = `mnt-${randomBytes(2).toString('hex')}`;

async function sh(cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await vm.exec(['bash', '-c', cmd]);
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-e2e-mounts-home-'));
  work = await mkdtemp(join(tmpdir(), 'kumo-e2e-mounts-'));
  rw = join(work, 'share');
  ro = join(work, 'readonly');
  for (const d of [rw, ro]) await mkdir(d);
  // the guest user (uid 1000 when kumo runs as root) owns the read-write folders, as it would its own
  await chown(rw, 1000, 1000);
  await writeFile(join(rw, 'from-host.txt'), 'hello from the host\n');
  await writeFile(join(ro, 'data.txt'), 'read me\n');
  // outside every shared folder
  await writeFile(join(work, 'secret.txt'), secret + '\n');
  await symlink(join(work, 'secret.txt'), join(rw, 'abs-link'));
  await symlink('../secret.txt', join(rw, 'rel-link'));
  const spec = join(work, 'spec.yaml');
  await writeFile(spec, `mounts:\n  - { host: readonly, guest: /ro, readOnly: true }\n`);
  const r = await kumo(['launch', testImagePath(), '--name', name, '--spec', spec, '--mount', rw, '--cpus', '1', '--memory', '1G', '--timeout', '900'], { home, timeoutMs: 20 * 60_000 });
  assert.equal(r.code, 0, r.stderr);
  vm = await getInstance(name, { home });
});

after(async () => {
  if (home) {
    await kumo(['delete', '--force', name], { home }).catch(() => {});
    await rm(home, { recursive: true, force: true });
  }
  if (work) await rm(work, { recursive: true, force: true });
});

test('the record keeps each mount with its transport (the spec file\'s first, then the flag\'s); both mounted virtiofs', async () => {
  const rec = await vm.record();
  assert.deepEqual(
    rec.mounts?.map((m) => [m.tag, m.host, m.guest, m.readOnly, m.type]),
    [
      ['kumo0', ro, '/ro', true, 'virtiofs'],
      ['kumo1', rw, rw, false, 'virtiofs'],
    ],
  );
  // one virtiofsd per folder, running
  const vfs = (await readFile(join(home, 'instances', name, 'virtiofsd-kumo1.pid'), 'utf8'));
  assert.ok(process.kill(JSON.parse(vfs).pid, 0));
  const r = await sh(`findmnt -no FSTYPE,OPTIONS ${rw}; findmnt -no FSTYPE,OPTIONS /ro`);
  assert.equal(r.code, 0, r.stderr);
  const [a, b] = r.stdout.trim().split('\n');
  assert.match(a!, /^virtiofs\s+rw,/);
  assert.match(b!, /^virtiofs\s+ro,/);
});

test('host -> guest and guest -> host: files cross both ways, live', async () => {
  assert.equal((await sh(`cat ${rw}/from-host.txt`)).stdout, 'hello from the host\n');
  await writeFile(join(rw, 'later.txt'), 'written while it runs\n');
  assert.equal((await sh(`cat ${rw}/later.txt`)).stdout, 'written while it runs\n');
  const w = await sh(`echo "hello from the guest" > ${rw}/from-guest.txt && mkdir -p ${rw}/dir/sub && echo x > ${rw}/dir/sub/f && id -u`);
  assert.equal(w.code, 0, w.stderr);
  assert.equal(await readFile(join(rw, 'from-guest.txt'), 'utf8'), 'hello from the guest\n');
  assert.equal(await readFile(join(rw, 'dir', 'sub', 'f'), 'utf8'), 'x\n');
  const st = await stat(join(rw, 'from-guest.txt'));
  assert.equal(st.uid, Number(w.stdout.trim()), 'owned on the host by the uid that wrote it in the guest');
});

test(':ro refuses writes in the guest; its files are readable', async () => {
  assert.equal((await sh('cat /ro/data.txt')).stdout, 'read me\n');
  const w = await sh('echo no > /ro/new.txt');
  assert.notEqual(w.code, 0);
  assert.match(w.stderr, /Read-only file system/);
  const s = await sh('sudo touch /ro/root.txt');
  assert.notEqual(s.code, 0, 'not even root in the guest');
  await assert.rejects(stat(join(ro, 'new.txt')));
  await assert.rejects(stat(join(ro, 'root.txt')));
});

test('no way out of the shared folder: symlinks to outside, .., hard links', async () => {
  // the symlinks resolve in the guest, where the host's file is not
  for (const l of ['abs-link', 'rel-link']) {
    const r = await sh(`cat ${rw}/${l}`);
    assert.notEqual(r.code, 0, `${l} must not read anything`);
    assert.ok(!r.stdout.includes(secret), `${l} exposed the host file`);
  }
  const up = await sh(`cat ${rw}/../secret.txt; ls -a ${rw}/..; sudo cat ${rw}/../secret.txt`);
  assert.ok(!up.stdout.includes(secret));
  assert.ok(!up.stdout.includes('secret.txt'), `.. lists the guest's own folder: ${up.stdout}`);
  // the guest cannot link one of its own files (or anything outside) into the folder
  const ln = await sh(`sudo ln /etc/hostname ${rw}/hostname-link`);
  assert.notEqual(ln.code, 0);
  assert.match(ln.stderr, /cross-device|Invalid cross-device link/);
  // as root in the guest, a link made inside the folder pointing up does not reach the host either
  const mk = await sh(`sudo ln -s ../../../../../../../../${work.slice(1)}/secret.txt ${rw}/deep-link && sudo cat ${rw}/deep-link`);
  assert.ok(!mk.stdout.includes(secret));
});
