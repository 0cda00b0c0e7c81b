/**
 * Labels, ttl and reaping against the real QEMU and the real kumo command, without booting a
 * guest: the base is a blank qcow2, so QEMU starts and sits in the firmware (started with
 * wait: false / --no-wait). list/delete by label and --all; a ttl that deletes a running
 * instance with no further kumo call; a test process killed with SIGKILL whose watchdog deletes
 * its VM and its QEMU; launch's reuse.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { ensureHome, type KumoPaths } from '../../../src/config/paths.js';
import { importImage } from '../../../src/image/index.js';
import { pidAlive } from '../../../src/core/exec.js';
import { deleteInstance, instanceFiles, instanceStatus, launch, listInstances, listNames, readRecord, deleteInstances } from '../../../src/instance/index.js';
import type { KumoError } from '../../../src/core/errors.js';
import { kumo, REPO } from '../../helpers/cli.js';

let root = '';
let home = '';
let paths: KumoPaths;
const shape = ['--memory', '128', '--cpus', '1', '--accel', 'tcg'];
const libShape = { image: 'blank', memory: 128, cpus: 1, accel: 'tcg' } as const;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-reap-'));
  home = join(root, 'home');
  paths = await ensureHome({ home });
  const base = join(root, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '32M']);
  await importImage(paths, base, { name: 'blank' });
});

after(async () => {
  for (const n of await listNames(paths)) await deleteInstance(paths, n, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

/** Poll until `cond` holds (every 200 ms), failing with `what` after a generous `ms`. */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const names = async (args: string[]) => {
  const r = await kumo(['--json', 'list', ...args], { home });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { name: string }[]).map((x) => x.name).sort();
};

test('labels: set on create, shown by list --json and info, selected by list --label, deleted by --label', { timeout: 180_000 }, async () => {
  for (const [n, labels] of [['la', ['team=ci', 'owner=ana']], ['lb', ['team=ci']], ['lc', ['team=qa']]] as const) {
    const r = await kumo(['create', 'blank', '--name', n, ...shape, ...labels.flatMap((l) => ['--label', l])], { home });
    assert.equal(r.code, 0, r.stderr);
  }
  assert.deepEqual((await readRecord(paths, 'la')).labels, { team: 'ci', owner: 'ana' });
  const rows = JSON.parse((await kumo(['--json', 'list'], { home })).stdout) as { name: string; labels: Record<string, string> }[];
  assert.deepEqual(rows.find((r) => r.name === 'la')?.labels, { team: 'ci', owner: 'ana' });
  assert.deepEqual(await names(['--label', 'team=ci']), ['la', 'lb']);
  assert.deepEqual(await names(['--label', 'team=ci', '--label', 'owner']), ['la']);
  assert.deepEqual(await names(['--label', 'owner=bob']), []);
  assert.deepEqual((await listInstances(paths, { label: 'team=qa' })).map((s) => s.name), ['lc']);
  const info = await kumo(['info', 'la'], { home });
  assert.match(info.stdout, /labels:\s+team=ci, owner=ana/);
  const table = await kumo(['list', '--label', 'team'], { home });
  assert.match(table.stdout, /LABELS/);
  assert.match(table.stdout, /lb\s.*team=ci/);

  // a running one among those selected refuses the whole delete without --force: nothing goes
  assert.equal((await kumo(['start', 'lb', '--no-wait'], { home })).code, 0);
  const refused = await kumo(['delete', '--label', 'team=ci'], { home });
  assert.equal(refused.code !== 0, true);
  assert.match(refused.stderr, /instance 'lb' is running/);
  assert.match(refused.stderr, /nothing was deleted/);
  assert.deepEqual(await names([]), ['la', 'lb', 'lc']);
  const pid = (await instanceStatus(paths, 'lb')).pid!;
  const del = await kumo(['delete', '--force', '--label', 'team=ci'], { home });
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stderr + del.stdout, /la deleted/);
  assert.match(del.stderr + del.stdout, /lb deleted/);
  assert.deepEqual(await names([]), ['lc']);
  await until("lb's QEMU to exit", () => !pidAlive(pid), 30_000);
  const none = await kumo(['delete', '--label', 'team=ci'], { home });
  assert.equal(none.code, 0);
  assert.match(none.stderr + none.stdout, /no instances with label team=ci/);
  await deleteInstance(paths, 'lc', { force: true });
});

test('delete --all: refuses names beside it, deletes every instance printing each, says so when there is none', { timeout: 120_000 }, async () => {
  for (const n of ['aa', 'ab']) assert.equal((await kumo(['create', 'blank', '--name', n, ...shape], { home })).code, 0);
  const mixed = await kumo(['delete', '--all', 'aa'], { home });
  assert.equal(mixed.code, 2);
  assert.match(mixed.stderr, /--all cannot be combined with instance names/);
  assert.deepEqual(await names([]), ['aa', 'ab'], 'nothing deleted by the refused command');
  const r = await kumo(['--json', 'delete', '--all'], { home });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { deleted: ['aa', 'ab'] });
  assert.deepEqual(await listNames(paths), []);
  const again = await kumo(['delete', '--all'], { home });
  assert.equal(again.code, 0);
  assert.match(again.stderr + again.stdout, /no instances to delete/);
  await assert.rejects(deleteInstances(paths, { all: true, label: 'a=b' }), (e: KumoError) => e.code === 'USAGE');
});

test('bad labels and ttls are typed errors with a hint, and nothing is made', async () => {
  const cases: [string[], RegExp, RegExp][] = [
    [['--label', 'bad key=x'], /label "bad key=x": the key "bad key"/, /a key is 1-128 letters/],
    [['--label', 'team'], /label "team": there is no '='/, /KEY=VALUE/],
    [['--ttl', 'soon'], /ttl: "soon" is not a duration/, /90s, 10m, 1h30m/],
    [['--ttl', '0'], /ttl: "0" is not more than zero/, /more than 0/],
    [['--ttl=-5'], /ttl: "-5" is negative/, /more than 0/],
  ];
  for (const [flags, msg, hint] of cases) {
    const r = await kumo(['create', 'blank', '--name', 'bad', ...shape, ...flags], { home });
    assert.equal(r.code, 3, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.match(r.stderr, hint);
    assert.equal(existsSync(instanceFiles(paths, 'bad').dir), false);
  }
  const sel = await kumo(['list', '--label', 'a b'], { home });
  assert.equal(sel.code, 3);
  assert.match(sel.stderr, /label selector "a b"/);
});

test('ttl: a running instance is powered off and deleted when its time is up, with no further kumo call', { timeout: 180_000 }, async () => {
  const r = await kumo(['launch', 'blank', '--name', 'short', ...shape, '--ttl', '3s', '--no-wait'], { home });
  assert.equal(r.code, 0, r.stderr);
  const rec = await readRecord(paths, 'short');
  assert.ok(rec.expiresAt, 'the record holds the expiry');
  const left = Date.parse(rec.expiresAt!) - Date.parse(rec.created);
  assert.equal(left, 3000, 'the expiry is 3 s after the creation');
  const pid = rec.lastStart?.pid;
  assert.ok(pid && pidAlive(pid), 'QEMU runs');
  // Only the detached reaper can delete it: this test calls no kumo command and no library function that sweeps.
  await until('the instance folder to disappear', () => !existsSync(instanceFiles(paths, 'short').dir), 90_000);
  await until('its QEMU to exit', () => !pidAlive(pid!), 30_000);
});

test('a test process killed with SIGKILL: its watchdog deletes the VM it launched, and its QEMU', { timeout: 180_000 }, async () => {
  const script = join(root, 'child.mjs');
  const index = join(REPO, 'dist', 'src', 'index.js');
  await writeFile(
    script,
    `import { launch } from ${JSON.stringify(index)};\n` +
      `const vm = await launch({ home: ${JSON.stringify(home)}, image: 'blank', memory: 128, cpus: 1, accel: 'tcg', wait: false, labels: { by: 'child' } });\n` +
      `console.log(vm.name);\nsetInterval(() => {}, 1000);\n`,
  );
  const env = { ...process.env };
  delete env.KUMO_NO_REAP;
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const name = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before printing a name`)));
  });
  const rec = await readRecord(paths, name);
  const pid = rec.lastStart?.pid;
  assert.ok(pid && pidAlive(pid), 'its QEMU runs');
  const regs = await readdir(join(home, 'run', 'reaper'));
  assert.ok(regs.some((f) => f.startsWith(`${child.pid}-`)), `a registration file of the child: ${regs.join(', ')}`);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  await until('the instance folder to disappear', () => !existsSync(instanceFiles(paths, name).dir), 60_000);
  await until('its QEMU to exit', () => !pidAlive(pid!), 30_000);
  await until('the registration file to go', async () => !(await readdir(join(home, 'run', 'reaper'))).some((f) => f.startsWith(`${child.pid}-`)), 30_000);
});

test('launch reuse: the same spec returns the same instance without a new start; another spec says what differs; absent is made', { timeout: 180_000 }, async () => {
  const first = await launch({ paths, name: 'keep', ...libShape, labels: { role: 'db' }, wait: false, reap: false });
  const rec = await first.record();
  const again = await launch({ paths, name: 'keep', ...libShape, labels: { role: 'db' }, wait: false, reuse: true });
  assert.equal(again.name, 'keep');
  assert.deepEqual((await again.record()).lastStart, rec.lastStart, 'not started again');
  assert.equal((await again.status()).state, 'running');
  await assert.rejects(launch({ paths, name: 'keep', ...libShape, cpus: 2, labels: { role: 'web' }, wait: false, reuse: true }), (e: KumoError) => {
    assert.equal(e.code, 'INSTANCE_SPEC_DIFFERS');
    assert.match(e.message, /cpus is 1, asked 2/);
    assert.match(e.message, /labels is \{"role":"db"\}, asked \{"role":"web"\}/);
    return true;
  });
  assert.deepEqual((await readRecord(paths, 'keep')).lastStart, rec.lastStart, 'the refused reuse changed nothing');
  // stopped: reuse starts it
  await first.stop({ force: true });
  const started = await launch({ paths, name: 'keep', ...libShape, labels: { role: 'db' }, wait: false, reuse: true });
  assert.equal((await started.status()).state, 'running');
  await started.delete();
  // absent: made as usual (and not registered for reaping: reuse keeps it for later runs)
  const made = await launch({ paths, name: 'fresh', ...libShape, wait: false, reuse: true });
  assert.equal((await made.status()).state, 'running');
  const regs = await readdir(join(home, 'run', 'reaper')).catch(() => [] as string[]);
  for (const f of regs) assert.ok(!(await import('node:fs')).readFileSync(join(home, 'run', 'reaper', f), 'utf8').includes('"fresh"'));
  await made.delete();
  // the CLI: --reuse NAME
  assert.equal((await kumo(['launch', 'blank', '--name', 'cli', ...shape, '--no-wait'], { home })).code, 0);
  const c1 = await readRecord(paths, 'cli');
  const r = await kumo(['launch', 'blank', '--reuse', 'cli', ...shape, '--no-wait'], { home });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await readRecord(paths, 'cli')).lastStart, c1.lastStart);
  const bad = await kumo(['launch', 'blank', '--reuse', 'cli', ...shape, '--memory', '256', '--no-wait'], { home });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /instance 'cli' exists with another spec: memory is 128 MiB, asked 256 MiB/);
  await deleteInstance(paths, 'cli', { force: true });
});
