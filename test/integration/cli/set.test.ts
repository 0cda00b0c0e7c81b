/**
 * `kumo set` with real qemu-img and a real QEMU (started on a blank disk, no guest to boot): cpus
 * and memory land in the record the next start reads (and in the QEMU argv of that start), the
 * disk grows (read back with qemu-img), a shrink is DISK_SHRINK with the sizes, bad values are
 * all reported at once, and a running instance is refused with the fix; every refusal leaves the
 * record and the disk as they were.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo, type CliResult } from '../../helpers/cli.js';

let dir = '';
let home = '';
let img = '';
const MiB = 1024 * 1024;
const env = () => ({ KUMO_ACCEL: 'tcg', XDG_CONFIG_HOME: join(dir, 'xdg') });
const k = (args: string[]) => kumo(args, { home, env: env(), timeoutMs: 180_000 });
const recordOf = async (name: string) => JSON.parse(await readFile(join(home, 'instances', name, 'instance.json'), 'utf8')) as { cpus: number; memoryMiB: number; diskBytes?: number };
const virtualSize = (name: string) => (JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', join(home, 'instances', name, 'disk.qcow2')], { encoding: 'utf8' })) as { 'virtual-size': number })['virtual-size'];
const errorOf = (r: CliResult) => (JSON.parse(r.stdout.trim().split('\n').pop()!) as { error: { code: string; message: string; hint: string; details?: { issues?: { path: string }[] } } }).error;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-set-'));
  home = join(dir, 'home');
  img = join(dir, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '64M']);
});
after(async () => {
  const names = existsSync(join(home, 'instances')) ? readdirSync(join(home, 'instances')).filter((n) => !n.startsWith('.')) : [];
  if (names.length) await k(['delete', '--force', ...names]);
  await rm(dir, { recursive: true, force: true });
});

test('cpus, memory and a bigger disk on a stopped instance: the record and the overlay change', async () => {
  assert.equal((await k(['create', img, '--name', 'web', '--memory', '128M'])).code, 0);
  const r = await k(['set', 'web', '--cpus', '3', '--memory', '256M', '--disk', '96M', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout.split('\n').filter((l) => !l.startsWith('{"event"')).join('\n')) as { changes: { field: string; from: number; to: number }[] };
  assert.deepEqual(doc.changes, [
    { field: 'cpus', from: 2, to: 3 },
    { field: 'memory', from: 128, to: 256 },
    { field: 'disk', from: 64 * MiB, to: 96 * MiB },
  ]);
  const rec = await recordOf('web');
  assert.equal(rec.cpus, 3);
  assert.equal(rec.memoryMiB, 256);
  assert.equal(rec.diskBytes, 96 * MiB);
  assert.equal(virtualSize('web'), 96 * MiB);
  // the same values again: nothing to change, said so
  const again = await k(['set', 'web', '--cpus', '3', '--disk', '96M']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /nothing changed/);
});

test('a smaller disk is DISK_SHRINK naming both sizes; bad values are all reported; nothing changes', async () => {
  const before = await readFile(join(home, 'instances', 'web', 'instance.json'), 'utf8');
  const s = await k(['set', 'web', '--disk', '80M', '--cpus', '4', '--json']);
  assert.equal(s.code, 3, s.stderr);
  const e = errorOf(s);
  assert.equal(e.code, 'DISK_SHRINK');
  assert.match(e.message, new RegExp(`is ${96 * MiB} bytes; ${80 * MiB} bytes would shrink it`));
  assert.match(e.hint, /at least its current size \(96M\)/);
  const bad = await k(['set', 'web', '--cpus', '0', '--memory', 'lots', '--disk', '-1', '--json']);
  assert.equal(bad.code, 3);
  assert.deepEqual(errorOf(bad).details?.issues?.map((i) => i.path), ['cpus', 'memory', 'disk']);
  const none = await k(['set', 'web', '--json']);
  assert.equal(errorOf(none).code, 'NOTHING_TO_SET');
  assert.equal(await readFile(join(home, 'instances', 'web', 'instance.json'), 'utf8'), before);
  assert.equal(virtualSize('web'), 96 * MiB);
  const missing = await k(['set', 'nope', '--cpus', '2', '--json']);
  assert.equal(errorOf(missing).code, 'INSTANCE_NOT_FOUND');
});

test('a running instance is refused with the fix; --stop stops it first; the next start runs with the new shape', async () => {
  const st = await k(['start', 'web', '--no-wait']);
  assert.equal(st.code, 0, st.stderr);
  const pidFile = join(home, 'instances', 'web', 'qemu.pid');
  const argvOf = async () => (await readFile(`/proc/${(await readFile(pidFile, 'utf8')).trim()}/cmdline`, 'utf8')).split('\0');
  const r = await k(['set', 'web', '--memory', '192M', '--json']);
  assert.equal(r.code, 5, r.stderr);
  const e = errorOf(r);
  assert.equal(e.code, 'INSTANCE_RUNNING');
  assert.match(e.hint, /kumo stop web/);
  assert.match(e.hint, /kumo set --stop web/);
  assert.equal((await recordOf('web')).memoryMiB, 256);
  const running = await argvOf();
  assert.equal(running[running.indexOf('-m') + 1]?.replace(/M$/, ''), '256');

  // no guest to power down here: --timeout 0 forces the stop at once
  const s = await k(['set', '--stop', '--timeout', '0', 'web', '--memory', '192M', '--cpus', '1']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal((await recordOf('web')).memoryMiB, 192);
  assert.equal((await k(['start', 'web', '--no-wait'])).code, 0);
  const argv = await argvOf();
  assert.match(argv[argv.indexOf('-m') + 1]!, /^192/);
  assert.match(argv[argv.indexOf('-smp') + 1]!, /^1\b|^cpus=1\b/);
  assert.equal((await k(['stop', '--force', 'web'])).code, 0);
});
