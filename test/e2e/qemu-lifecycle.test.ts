/**
 * One VM, booted from the built test image under TCG, carried through its whole life by the real
 * CLI (node bin/kumo.js --home TMP ...), as a user would: launch with user-data and a port,
 * exec, ssh, ports, cp, logs, restart (disk changes kept), kill -9 of QEMU (list says crashed,
 * start recovers), stop, delete (no files, no processes). Boots: 3.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { kumo } from '../helpers/cli.js';
import { testImagePath } from '../helpers/test-image.js';
import { freePort, portFree } from '../../src/driver/net.js';
import { sshBanner } from '../../src/guest/ready.js';
import { controlPathFor, probeSocket } from '../../src/guest/master.js';
import { getInstance } from '../../src/index.js';

const NAME = 'vm-a';
let home = '';
let work = '';
let fwdPort = 0;

function k(args: string[], timeoutMs = 900_000) {
  return kumo(args, { home, timeoutMs });
}

async function listJson(): Promise<{ name: string; status: string; ssh?: string; pid?: number }[]> {
  const r = await k(['list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function qemuPidsFor(dir: string): number[] {
  const out: number[] = [];
  for (const p of execFileSync('ps', ['-eo', 'pid=,args=']).toString().split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(p);
    if (m && m[2]!.includes('qemu-system') && m[2]!.includes(dir)) out.push(Number(m[1]));
  }
  return out;
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-e2e-life-'));
  work = await mkdtemp(join(tmpdir(), 'kumo-e2e-work-'));
  await writeFile(
    join(work, 'user-data.yaml'),
    ['#cloud-config', 'write_files:', '  - path: /etc/kumo-e2e', '    content: written by write_files', 'runcmd:', '  - [sh, -c, "echo runcmd-ran > /var/tmp/runcmd-marker"]', ''].join('\n'),
  );
  fwdPort = await freePort();
});

after(async () => {
  if (home) {
    await kumo(['delete', '--force', NAME], { home }).catch(() => {});
    for (const pid of qemuPidsFor(join(home, 'instances'))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await rm(home, { recursive: true, force: true });
  }
  if (work) await rm(work, { recursive: true, force: true });
});

test('launch: boots, waits for ssh and cloud-init, shows the stages', async () => {
  const r = await k(['launch', testImagePath(), '--name', NAME, '--user-data', join(work, 'user-data.yaml'), '--port', `${fwdPort}:22`, '--memory', '1G', '--timeout', '900']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), NAME);
  for (const stage of ['booting', 'network', 'ssh', 'cloud-init']) assert.match(r.stderr, new RegExp(`✓ ${stage}`), `stage ${stage} in:\n${r.stderr}`);
  const dir = join(home, 'instances', NAME);
  for (const f of ['instance.json', 'disk.qcow2', 'seed.iso', 'known_hosts', 'qemu.pid', 'qmp.sock', 'serial.log']) assert.ok(existsSync(join(dir, f)), f);
  // The disk is an overlay on the stored base, with its format recorded (-F), never a copy.
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', join(dir, 'disk.qcow2')]).toString());
  assert.match(info['backing-filename'], new RegExp(`^${join(home, 'images')}`));
  assert.equal(info['backing-filename-format'], 'qcow2');
  // a booted guest's readiness logged in over ssh: that connection stays, as the master later commands share
  const controlPath = await controlPathFor(await (await getInstance(NAME, { home })).sshTarget());
  assert.ok(controlPath, 'connection sharing is on');
  assert.equal(await probeSocket(controlPath), 'alive', 'the readiness polls left a master behind the launch');
});

test('list and info tell the truth about the running VM', async () => {
  const [row] = (await listJson()).filter((x) => x.name === NAME);
  assert.equal(row?.status, 'running');
  assert.match(row!.ssh!, /^127\.0\.0\.1:\d+$/);
  const r = await k(['info', NAME, '--json']);
  assert.equal(r.code, 0);
  const i = JSON.parse(r.stdout);
  assert.equal(i.state, 'running');
  assert.equal(i.record.lastStart.accel, 'tcg');
  // the pid is a real QEMU whose argv names this instance
  assert.deepEqual(qemuPidsFor(join(home, 'instances', NAME)), [i.pid]);
});

test('exec passes stdout, stderr and the exit code through', async () => {
  const r = await k(['exec', NAME, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.equal(r.code, 7);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  const u = await k(['exec', NAME, '--', 'uname', '-s']);
  assert.equal(u.stdout.trim(), 'Linux');
  // words are passed as words, not re-split by the guest's shell
  const w = await k(['exec', NAME, '--', 'printf', '%s|', 'a b', "it's", '$HOME']);
  assert.equal(w.stdout, "a b|it's|$HOME|");
  const stdin = await kumo(['exec', NAME, '--', 'wc', '-c'], { home, input: 'twelve bytes' });
  assert.equal(stdin.stdout.trim(), '12');
});

test('user-data was applied: write_files and runcmd observed in the guest', async () => {
  const r = await k(['exec', NAME, '--', 'cat', '/etc/kumo-e2e', '/var/tmp/runcmd-marker']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /written by write_files/);
  assert.match(r.stdout, /runcmd-ran/);
});

test('ssh uses the host key kumo made (strict checking) and the guest has the instance name', async () => {
  const r = await k(['ssh', NAME, '--', 'hostname']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), NAME);
  const pub = (await readFile(join(home, 'instances', NAME, 'ssh_host_ed25519_key.pub'), 'utf8')).split(' ')[1];
  // an independent reader: what the guest's sshd really offers
  const port = JSON.parse((await k(['port', 'list', NAME, '--json'])).stdout).ssh.hostPort;
  const scan = execFileSync('ssh-keyscan', ['-p', String(port), '-t', 'ed25519', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.equal(scan.trim().split(/\s+/)[2], pub);
});

test('ports: the launch forward answers; add and remove while running', async () => {
  assert.ok(await sshBanner('127.0.0.1', fwdPort, 5000), 'the --port forward reaches the guest sshd');
  const extra = await freePort();
  const add = await k(['port', 'add', NAME, `${extra}:22`]);
  assert.equal(add.code, 0, add.stderr);
  assert.ok(await sshBanner('127.0.0.1', extra, 5000), 'a live forward reaches the guest');
  const l = JSON.parse((await k(['port', 'list', NAME, '--json'])).stdout);
  assert.deepEqual(l.ports.map((p: { hostPort: number }) => p.hostPort).sort(), [fwdPort, extra].sort());
  const dup = await k(['port', 'add', NAME, `${extra}:22`]);
  assert.equal(dup.code, 5);
  assert.match(dup.stderr, /already forwards/);
  const rm1 = await k(['port', 'rm', NAME, String(extra)]);
  assert.equal(rm1.code, 0, rm1.stderr);
  assert.ok(await portFree(extra), 'the host port is released');
  const rec = JSON.parse(await readFile(join(home, 'instances', NAME, 'instance.json'), 'utf8'));
  assert.deepEqual(rec.ports.map((p: { hostPort: number }) => p.hostPort), [fwdPort]);
});

test('cp copies files and folders both ways', async () => {
  await mkdir(join(work, 'tree', 'sub'), { recursive: true });
  await writeFile(join(work, 'tree', 'a.txt'), 'alpha\n');
  await writeFile(join(work, 'tree', 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255]));
  assert.equal((await k(['cp', join(work, 'tree'), `${NAME}:/tmp/`])).code, 0);
  const g = await k(['exec', NAME, '--', 'sh', '-c', 'cat /tmp/tree/a.txt; od -An -tx1 /tmp/tree/sub/b.bin']);
  assert.match(g.stdout, /alpha/);
  assert.match(g.stdout, /00 01 02 ff/);
  const back = join(work, 'back');
  assert.equal((await k(['cp', `${NAME}:/etc/kumo-e2e`, back])).code, 0);
  assert.equal(await readFile(back, 'utf8'), 'written by write_files');
  const missing = await k(['cp', `${NAME}:/no/such/file`, join(work, 'x')]);
  assert.equal(missing.code, 7, missing.stderr); // scp failed in the guest: an external error
  assert.match(missing.stderr, /no\/such\/file|No such file/);
});

test('logs shows the serial console', async () => {
  const r = await k(['logs', NAME]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /cloud-init/i);
  // cloud-init validates the merged config (the image's cloud.cfg.d, kumo's seed, the user-data)
  // against its schema at boot and says so on the console when any of it is invalid
  assert.match(r.stdout, /Cloud-init v\. [\d.]+ finished/, 'the whole boot is in the log');
  assert.doesNotMatch(r.stdout, /Invalid cloud-config provided/);
});

test('restart keeps disk changes (graceful stop, then start)', async () => {
  assert.equal((await k(['exec', NAME, '--', 'sh', '-c', 'echo persisted | sudo tee /var/lib/kumo-marker >/dev/null && sync'])).code, 0);
  const r = await k(['restart', NAME, '--timeout', '900']);
  assert.equal(r.code, 0, r.stderr);
  const m = await k(['exec', NAME, '--', 'cat', '/var/lib/kumo-marker']);
  assert.equal(m.stdout.trim(), 'persisted');
});

test('kill -9 of QEMU: list says crashed, start recovers', async () => {
  const dir = join(home, 'instances', NAME);
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && qemuPidsFor(dir).length; i++) await new Promise((r) => setTimeout(r, 100));
  const [row] = (await listJson()).filter((x) => x.name === NAME);
  assert.equal(row?.status, 'crashed');
  const ex = await k(['exec', NAME, '--', 'true']);
  assert.equal(ex.code, 5);
  assert.match(ex.stderr, /not running \(crashed/);
  const s = await k(['start', NAME, '--timeout', '900']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal((await listJson()).find((x) => x.name === NAME)?.status, 'running');
  const m = await k(['exec', NAME, '--', 'cat', '/var/lib/kumo-marker']);
  assert.equal(m.stdout.trim(), 'persisted');
});

test('delete refuses a running VM without --force; stop then delete leaves no files and no processes', async () => {
  const dir = join(home, 'instances', NAME);
  const refused = await k(['delete', NAME]);
  assert.equal(refused.code, 5);
  assert.match(refused.stderr, /is running/);
  assert.match(refused.stderr, /--force/);
  const st = await k(['stop', NAME]);
  assert.equal(st.code, 0, st.stderr);
  assert.equal((await listJson()).find((x) => x.name === NAME)?.status, 'stopped');
  assert.deepEqual(qemuPidsFor(dir), []);
  assert.ok(!existsSync(join(dir, 'qemu.pid')) && !existsSync(join(dir, 'qmp.sock')));
  const d = await k(['delete', NAME]);
  assert.equal(d.code, 0, d.stderr);
  assert.ok(!existsSync(dir));
  assert.deepEqual(await readdir(join(home, 'instances')), []);
  assert.deepEqual(qemuPidsFor(dir), []);
  assert.equal(fwdPort > 0 && (await portFree(fwdPort)), true);
});
