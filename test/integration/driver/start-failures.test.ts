/**
 * QEMU start failures through the real CLI, without a bootable guest: a forwarded host port that
 * another process holds (create refuses; a start that finds it taken fails with PORT_IN_USE and
 * leaves the instance stopped), and `--accel kvm` where KVM does not work (a typed error with a
 * hint, quickly, not a hung guest).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo, type CliResult } from '../../helpers/cli.js';
import { probeAccel } from '../../../src/driver/shared/accel.js';

let dir = '';
let home = '';
let img = '';
let holder: Server;
let port = 0;
const k = (args: string[]) => kumo(args, { home, env: { KUMO_ACCEL: 'tcg' }, timeoutMs: 120_000 });
const errorOf = (r: CliResult) => JSON.parse(r.stdout.trim().split('\n').pop()!).error as { code: string; message: string; hint: string };
const names = () => (existsSync(join(home, 'instances')) ? readdirSync(join(home, 'instances')).filter((n) => !n.startsWith('.')) : []);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-startfail-'));
  home = join(dir, 'home');
  img = join(dir, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']);
  // Another program holds a port (bound on port 0: the kernel picks it, nobody else can have it).
  holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  port = (holder.address() as { port: number }).port;
});
after(async () => {
  const left = names();
  if (left.length) await k(['delete', '--force', ...left]);
  await new Promise((r) => holder.close(r));
  await rm(dir, { recursive: true, force: true });
});

test('a forward to a host port another process holds: create refuses, start fails with PORT_IN_USE and the instance stays stopped', async () => {
  const c = await k(['create', img, '--name', 'pt0', '-p', `${port}:80`, '--json']);
  assert.equal(c.code, 5, c.stderr);
  assert.equal(errorOf(c).code, 'PORT_IN_USE');
  assert.equal(errorOf(c).message, `port 127.0.0.1:${port} is already taken`);
  assert.match(errorOf(c).hint, /choose another host port for the forward to guest port 80/);
  assert.deepEqual(names(), []);

  // Free when it was created, taken when it starts: the record names the port the holder has.
  const ok = await k(['create', img, '--name', 'pt1']);
  assert.equal(ok.code, 0, ok.stderr);
  const recPath = join(home, 'instances', 'pt1', 'instance.json');
  const rec = JSON.parse(await readFile(recPath, 'utf8'));
  rec.ports = [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: port, guestPort: 80 }];
  await writeFile(recPath, JSON.stringify(rec));
  const s = await k(['start', 'pt1', '--no-wait', '--json']);
  assert.equal(s.code, 5, s.stdout + s.stderr);
  const e = errorOf(s);
  assert.equal(e.code, 'PORT_IN_USE');
  assert.equal(e.message, `port 127.0.0.1:${port} is already taken`);
  const l = await k(['list', '--json']);
  assert.deepEqual((JSON.parse(l.stdout) as { name: string; status: string }[]).map((x) => [x.name, x.status]), [['pt1', 'stopped']]);
  // No QEMU left behind, and the holder still has its port.
  assert.equal(existsSync(join(home, 'instances', 'pt1', 'qemu.pid')) && isRunning(Number(await readFile(join(home, 'instances', 'pt1', 'qemu.pid'), 'utf8'))), false);
  assert.equal(holder.listening, true);
  assert.equal((await k(['delete', 'pt1'])).code, 0);
});

function isRunning(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st[st.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

test('--accel kvm: where KVM does not work, a typed error with a hint and the instance stays stopped; where it works, it is used', async () => {
  const c = await k(['create', img, '--name', 'kv', '--accel', 'kvm']);
  assert.equal(c.code, 0, c.stderr);
  const probe = await probeAccel('kvm');
  const s = await k(['start', 'kv', '--no-wait', '--json']);
  if (probe.usable) {
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout.split('\n').filter((x) => !x.startsWith('{"event"')).join('\n')).accel, 'kvm');
  } else {
    assert.equal(s.code, 6, s.stdout + s.stderr);
    const e = errorOf(s);
    assert.equal(e.code, 'KVM_UNUSABLE');
    assert.equal(e.message, `KVM was asked for but does not work here: ${probe.reason}`);
    assert.match(e.hint, /use --accel tcg/);
    const l = await k(['list', '--json']);
    assert.equal((JSON.parse(l.stdout) as { name: string; status: string }[]).find((x) => x.name === 'kv')?.status, 'stopped');
  }
  assert.equal((await k(['delete', '--force', 'kv'])).code, 0);
});
