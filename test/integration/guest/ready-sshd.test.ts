/**
 * Readiness (src/guest/ready.ts) against a real sshd on 127.0.0.1, the way it meets a guest:
 * ssh with the pinned host key, then cloud-init's status and instance-id read over that ssh.
 *
 * The "guest" is the host's own sshd binary run in a private mount namespace (unshare -m), where
 * test folders are bound over /usr/local/bin (a `cloud-init` that reports what the test wrote, and
 * a `sudo` that runs its command), /var/lib (cloud-init's state: data/instance-id, data/result.json),
 * /tmp and /run (sshd's privilege separation folder). Nothing of the host is changed: the readiness
 * script's files land in the test's folders. Needs root (mount namespaces, sshd's privilege
 * separation); skipped otherwise.
 *
 * Each case: a guest that is ready; a cloud-init that failed (CLOUD_INIT_FAILED with its errors);
 * an instance-id of another instance (NOT_READY at cloud-init, naming both ids); a clone whose
 * cloud-init state is still its template's (accepted only as the template's id); a host key that
 * is not the pinned one (NOT_READY at ssh: ssh refused the key, nothing ran).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitReady } from '../../../src/guest/ready.js';
import { closeMaster } from '../../../src/guest/master.js';
import { generateHostKey, hostKeyAlias, writeKnownHosts } from '../../../src/guest/keys.js';
import type { SshTarget } from '../../../src/guest/target.js';
import { sshdConfig } from '../../helpers/sshd.js';

const root = process.getuid?.() === 0;
const skip = !root ? 'needs root (a mount namespace for the fake guest, sshd privilege separation)' : !existsSync('/usr/sbin/sshd') ? 'no /usr/sbin/sshd (apt-get install openssh-server)' : false;

let dir = '';
let sshd: ChildProcess | undefined;
let target: SshTarget;
let wrongKeyTarget: SshTarget;
const IID = 'i-ready-1';

/** The folders bound into the fake guest, by where they appear there. */
const guest = (p: string) => join(dir, 'guest', p);

const FAKE_CLOUD_INIT = `#!/bin/sh
# the test's cloud-init: 'status ...' prints what the test wrote and exits with its code
[ "$1" = status ] || { echo "fake cloud-init: only 'status'" >&2; exit 2; }
cat /var/lib/cloud/fake-status
exit "$(cat /var/lib/cloud/fake-rc)"
`;
const FAKE_SUDO = `#!/bin/sh
# the test's sudo: the session is root already
[ "$1" = -n ] && shift
exec "$@"
`;

/** What the fake guest's cloud-init says: its status text and exit code, instance-id, result.json. */
async function cloudInit(o: { status: string; rc: number; iid: string; errors?: string[] }): Promise<void> {
  await writeFile(guest('var/lib/cloud/fake-status'), `status: ${o.status}\n`);
  await writeFile(guest('var/lib/cloud/fake-rc'), `${o.rc}\n`);
  await writeFile(guest('var/lib/cloud/data/instance-id'), `${o.iid}\n`);
  await writeFile(guest('var/lib/cloud/data/result.json'), JSON.stringify({ v1: { datasource: 'DataSourceNoCloud', errors: o.errors ?? [] } }));
}

/**
 * Start sshd in its namespace on a port picked at random, again on another when that one is
 * taken (sshd cannot be given port 0); resolves with the port once it listens.
 */
async function startSshd(cfgBase: string): Promise<number> {
  // The test folder is under the host's /tmp, which the last bind hides: sshd reads its files
  // through /mnt (the test folder bound there first).
  const bind = (from: string, to: string) => `mount --bind "$1/${from}" ${to}`;
  const script = ['set -e', 'mount --bind "$1" /mnt', bind('guest/usr/local/bin', '/usr/local/bin'), bind('guest/var/lib', '/var/lib'), bind('guest/run', '/run'), bind('guest/tmp', '/tmp'), 'exec /usr/sbin/sshd -D -e -f /mnt/sshd_config'].join('\n');
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const cfg = join(dir, 'sshd_config');
    await writeFile(cfg, cfgBase.replace('PORT', String(port)));
    const p = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    const up = await new Promise<boolean | string>((resolve) => {
      let err = '';
      p.stderr!.on('data', (c: Buffer) => {
        err += c;
        if (/Server listening on 127\.0\.0\.1 port/.test(err)) resolve(true);
      });
      p.on('exit', (code) => resolve(/Address already in use/.test(err) ? false : `sshd exited (${code}): ${err}`));
    });
    if (up === true) {
      sshd = p;
      return port;
    }
    if (typeof up === 'string' || attempt >= 5) throw new Error(typeof up === 'string' ? up : 'no free port in 6 tries');
  }
}

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'kumo-ready-sshd-'));
  for (const d of ['usr/local/bin', 'var/lib/cloud/data', 'tmp', 'run/sshd']) await mkdir(guest(d), { recursive: true });
  await chmod(guest('tmp'), 0o1777);
  await chmod(guest('run/sshd'), 0o755);
  await writeFile(guest('usr/local/bin/cloud-init'), FAKE_CLOUD_INIT, { mode: 0o755 });
  await writeFile(guest('usr/local/bin/sudo'), FAKE_SUDO, { mode: 0o755 });
  // the instance's host key (pinned in its known_hosts), and another one the wrong target pins
  const hostKey = await generateHostKey(join(dir, 'keys'), 'ed25519', 'kumo-g');
  const other = await generateHostKey(join(dir, 'keys'), 'ed25519', 'kumo-g');
  await writeFile(join(dir, 'keys', 'ssh_host_ed25519_key'), hostKey.privateKey, { mode: 0o600 });
  const login = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kumo-test', '-f', login]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(`${login}.pub`, 'utf8'));
  const kh = join(dir, 'known_hosts');
  const khWrong = join(dir, 'known_hosts.wrong');
  await writeKnownHosts(kh, 'g', [hostKey]);
  await writeKnownHosts(khWrong, 'g', [other]);
  const port = await startSshd(sshdConfig({ port: 'PORT', hostKey: '/mnt/keys/ssh_host_ed25519_key', authorizedKeys: '/mnt/authorized_keys' }));
  target = { name: 'g', host: '127.0.0.1', port, user: 'root', identity: login, knownHosts: kh, alias: hostKeyAlias('g') };
  wrongKeyTarget = { ...target, knownHosts: khWrong };
});

after(async () => {
  if (target) await closeMaster(target).catch(() => false);
  if (wrongKeyTarget) await closeMaster(wrongKeyTarget).catch(() => false);
  sshd?.kill('SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('ready: ssh with the pinned key, cloud-init done with this instance-id', { skip }, async () => {
  await cloudInit({ status: 'done', rc: 0, iid: IID });
  const r = await waitReady(target, { instanceId: IID, timeoutMs: 30_000 });
  assert.deepEqual(r.cloudInit, { status: 'done', errors: [] });
  assert.deepEqual(Object.keys(r.timings).sort(), ['booting', 'cloud-init', 'network', 'ssh']);
  // the readiness script ran in the fake guest: its status file is in the guest's /tmp, not the host's
  assert.equal(await readFile(guest('tmp/.kumo-ci-status'), 'utf8'), 'status: done\n');
});

test('cloud-init failed: CLOUD_INIT_FAILED with its status and the errors of result.json', { skip }, async () => {
  await cloudInit({ status: 'error', rc: 1, iid: IID, errors: ["('scripts_user', RuntimeError('Runparts: 1 failures in 1 attempted commands'))"] });
  await assert.rejects(waitReady(target, { instanceId: IID, timeoutMs: 30_000 }), (e: Error & { code?: string; details?: Record<string, unknown> }) => {
    assert.equal(e.code, 'CLOUD_INIT_FAILED');
    assert.match(e.message, /^cloud-init reported errors in instance 'g' \(status: error\):\n {2}\('scripts_user', RuntimeError\('Runparts: 1 failures/);
    assert.deepEqual(e.details, { status: 'error', errors: ["('scripts_user', RuntimeError('Runparts: 1 failures in 1 attempted commands'))"] });
    return true;
  });
});

test("another instance's instance-id: NOT_READY at cloud-init, naming both ids", { skip }, async () => {
  await cloudInit({ status: 'done', rc: 0, iid: 'i-someone-else' });
  await assert.rejects(waitReady(target, { instanceId: IID, timeoutMs: 3000 }), (e: Error & { code?: string; details?: Record<string, unknown> }) => {
    assert.equal(e.code, 'NOT_READY');
    assert.deepEqual(e.details, { stage: 'cloud-init' });
    assert.match(e.message, /\(stuck at: cloud-init\)\nlast error: cloud-init reports instance-id 'i-someone-else', not this instance's 'i-ready-1'\n/);
    return true;
  });
});

test("a clone not booted since its restore: its template's instance-id is accepted, no other", { skip }, async () => {
  await cloudInit({ status: 'done', rc: 0, iid: 'i-template-7' });
  const r = await waitReady(target, { instanceId: IID, templateInstanceId: 'i-template-7', timeoutMs: 30_000 });
  assert.equal(r.cloudInit.status, 'done');
  await cloudInit({ status: 'done', rc: 0, iid: 'i-someone-else' });
  await assert.rejects(waitReady(target, { instanceId: IID, templateInstanceId: 'i-template-7', timeoutMs: 3000 }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'NOT_READY');
    assert.match(e.message, /last error: cloud-init reports instance-id 'i-someone-else', not this instance's 'i-ready-1' \(nor its template's 'i-template-7'\)/);
    return true;
  });
});

test('a host key that is not the pinned one: NOT_READY at ssh, and nothing ran in the guest', { skip }, async () => {
  await cloudInit({ status: 'done', rc: 0, iid: IID });
  await rm(guest('tmp/.kumo-ci-status'), { force: true });
  await assert.rejects(waitReady(wrongKeyTarget, { instanceId: IID, timeoutMs: 3000 }), (e: Error & { code?: string; details?: Record<string, unknown> }) => {
    assert.equal(e.code, 'NOT_READY');
    assert.deepEqual(e.details, { stage: 'ssh' });
    assert.match(e.message, /last error: Host key verification failed\./);
    return true;
  });
  assert.equal(existsSync(guest('tmp/.kumo-ci-status')), false, 'the readiness script never ran');
});
