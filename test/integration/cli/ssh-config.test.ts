/**
 * `kumo ssh-config NAME` used by a real `ssh -F` against a real sshd on 127.0.0.1: the sshd
 * serves the host key kumo made for the instance (its known_hosts pins it) and accepts kumo's own
 * login key, so the printed block alone must get ssh in, verified. An sshd with another host key
 * must be refused by the same block (StrictHostKeyChecking yes, kumo's known_hosts only).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { kumo } from '../../helpers/cli.js';
import { sshdConfig } from '../../helpers/sshd.js';

let dir = '';
let home = '';
const k = (args: string[]) => kumo(args, { home, env: { KUMO_ACCEL: 'tcg', XDG_CONFIG_HOME: join(dir, 'xdg') } });
const sshds: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Start sshd on 127.0.0.1 with `hostKey`, accepting `authorized`; resolves once it listens. */
async function startSshd(name: string, hostKey: string, authorized: string): Promise<number> {
  // sshd run as root wants its privilege separation folder (the package makes it only when its service starts)
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const cfg = join(dir, `${name}.sshd_config`);
  await writeFile(cfg, sshdConfig({ port, hostKey, authorizedKeys: authorized }));
  const p = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  sshds.push(p);
  await new Promise<void>((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (c: Buffer) => {
      err += c;
      if (/Server listening on 127\.0\.0\.1 port/.test(err)) resolve();
    });
    p.on('exit', (code) => reject(new Error(`sshd exited (${code}): ${err}`)));
  });
  return port;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-sshconfig-'));
  home = join(dir, 'home');
  const img = join(dir, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '32M']);
  const r = await k(['create', img, '--name', 'web', '--memory', '128M']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  for (const p of sshds) p.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
});

/** Point the instance's record at `port` as the forwarded ssh port, logging in as this user. */
async function pointAt(port: number): Promise<void> {
  const f = join(home, 'instances', 'web', 'instance.json');
  const rec = JSON.parse(await readFile(f, 'utf8')) as { ssh: { port: number; user: string; key: string } };
  rec.ssh.port = port;
  rec.ssh.user = userInfo().username;
  await writeFile(f, JSON.stringify(rec, null, 2));
}

test('never started: no port yet, a typed error that says to start it', async () => {
  const r = await k(['ssh-config', 'web', '--json']);
  assert.equal(r.code, 5, r.stderr); // a conflict: the instance is in the wrong state for it
  assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'SSH_ADDRESS_UNKNOWN');
  assert.match(r.stderr, /hint: start it first: kumo start web/);
});

test("ssh -F with the printed block logs in to a real sshd, the instance's host key verified", async () => {
  const inst = join(home, 'instances', 'web');
  const keyPub = join(home, 'keys', 'id_ed25519.pub');
  assert.ok(existsSync(keyPub), 'kumo made its login key');
  const port = await startSshd('good', join(inst, 'ssh_host_ed25519_key'), keyPub);
  await pointAt(port);
  const r = await k(['ssh-config', 'web']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Host kumo-web\n {2}HostName 127\.0\.0\.1\n {2}Port \d+\n/);
  assert.match(r.stdout, new RegExp(`\\n {2}Port ${port}\\n`));
  assert.match(r.stdout, new RegExp(`\\n {2}UserKnownHostsFile ${join(inst, 'known_hosts').replace(/[.]/g, '\\.')}\\n`));
  assert.match(r.stdout, /\n {2}StrictHostKeyChecking yes\n/);
  assert.match(r.stderr, /web is not running/);
  const conf = join(dir, 'web.conf');
  await writeFile(conf, r.stdout);
  const out = execFileSync('ssh', ['-F', conf, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', 'kumo-web', 'echo', 'hello-from-sshd'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(out, 'hello-from-sshd\n');
});

test('the same block refuses an sshd with another host key (pinned, never trusted on first use)', async () => {
  const other = join(dir, 'other_host_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
  const port = await startSshd('impostor', other, join(home, 'keys', 'id_ed25519.pub'));
  await pointAt(port);
  const r = await k(['ssh-config', 'web']);
  assert.equal(r.code, 0, r.stderr);
  const conf = join(dir, 'impostor.conf');
  await writeFile(conf, r.stdout);
  const res = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = spawn('ssh', ['-F', conf, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', 'kumo-web', 'echo', 'should-not-run'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (code) => {
      assert.equal(stdout, '');
      resolve({ code, stderr });
    });
  });
  assert.equal(res.code, 255);
  assert.match(res.stderr, /host key|REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/i);
});
