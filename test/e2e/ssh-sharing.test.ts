/**
 * Connection sharing and exec for programs, on ONE VM cloned from a warm template of the test
 * image (library launch): the first exec opens a master, 50 execs in a row ride it (median
 * reported, not asserted),
 * 4 processes exec at once through one master, a master killed mid-test (and 4 processes racing
 * to replace it) is replaced, exec's env/cwd/user/stdin/streaming/check/timeout as the guest sees
 * them, copyIn/copyOut of a folder byte for byte, and stop/delete close the master. Boots: none
 * of its own: a clone of the warm template the e2e files share (test/helpers/warm-home.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, type Instance } from '../../src/index.js';
import { controlPathFor, probeSocket } from '../../src/guest/master.js';
import { kumo } from '../helpers/cli.js';
import { testImagePath } from '../helpers/test-image.js';
import { warmHome, WARM_SHAPE, type WarmHome } from '../helpers/warm-home.js';

let home = '';
let warm: WarmHome | undefined;
let work = '';
let vm: Instance | undefined;
let controlPath = '';
const NAME = `share-${randomBytes(2).toString('hex')}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Pids of ssh masters serving `path`. */
function masters(path: string): number[] {
  const out: number[] = [];
  for (const line of execFileSync('ps', ['-eo', 'pid=,args=']).toString().split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && m[2]!.includes(`${path} [mux]`)) out.push(Number(m[1]));
  }
  return out;
}

function theVm(): Instance {
  assert.ok(vm, 'the VM was launched');
  return vm;
}

before(async () => {
  warm = await warmHome();
  home = warm.home;
  work = await mkdtemp(join(tmpdir(), 'kumo-e2e-share-w-'));
  vm = await launch({ image: testImagePath(), name: NAME, home, ...WARM_SHAPE, timeout: 900 });
  assert.equal(vm.started?.restored?.kind, 'template', 'a clone of the shared warm template (restored, not booted)');
  controlPath = (await controlPathFor(await vm.sshTarget()))!;
});

after(async () => {
  if (vm) await vm.delete().catch(() => {});
  if (controlPath) for (const pid of masters(controlPath)) process.kill(pid, 'SIGKILL');
  await warm?.done();
  if (work) await rm(work, { recursive: true, force: true });
});

test('ready: a clone has no master yet; its first exec opens one, in a private folder, at a short path', async () => {
  assert.ok(controlPath, 'sharing is on');
  assert.ok(Buffer.byteLength(controlPath) < 108);
  // a clone's readiness logs in nowhere (the agent gave its identity, sshd answered): no master
  // (a booted guest's readiness leaves one: e2e/qemu-lifecycle)
  assert.equal(await probeSocket(controlPath), 'absent');
  assert.deepEqual(masters(controlPath), []);
  assert.equal((await theVm().exec(['true'])).code, 0);
  assert.equal(await probeSocket(controlPath), 'alive');
  assert.equal(masters(controlPath).length, 1);
  const dir = controlPath.slice(0, controlPath.lastIndexOf('/'));
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal((await stat(controlPath)).mode & 0o077, 0);
});

test('50 execs in a row through the master', async (t) => {
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t0 = process.hrtime.bigint();
    const r = await theVm().exec(['echo', `n${i}`]);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `n${i}\n`);
  }
  assert.equal(masters(controlPath).length, 1, 'still one master');
  t.diagnostic(`library vm.exec median ${median(times).toFixed(0)} ms over 50 (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)})`);
  const cli: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    const r = await kumo(['exec', NAME, '--', 'true'], { home });
    cli.push(Number(process.hrtime.bigint() - t0) / 1e6);
    assert.equal(r.code, 0, r.stderr);
  }
  t.diagnostic(`kumo exec CLI median ${median(cli).toFixed(0)} ms over 5`);
});

test('4 processes exec at once through one master', async () => {
  const before = masters(controlPath);
  assert.equal(before.length, 1);
  const rs = await Promise.all([0, 1, 2, 3].map((i) => kumo(['exec', NAME, '--', 'sh', '-c', `echo p${i}-$(hostname)`], { home })));
  rs.forEach((r, i) => {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `p${i}-${NAME}\n`);
  });
  assert.deepEqual(masters(controlPath), before, 'the same master served them all');
  // kumo ssh uses it too.
  const p = await kumo(['ssh', '--print-command', NAME], { home }); // options before the name (after it, words are the guest command)
  assert.match(p.stdout, new RegExp(`ControlPath=${controlPath}`));
  assert.match(p.stdout, /StrictHostKeyChecking=yes/);
});

test('a master killed mid-test is replaced; 4 processes racing to replace it all succeed', async () => {
  const [old] = masters(controlPath);
  assert.ok(old);
  process.kill(old, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await probeSocket(controlPath), 'stale', 'the killed master left its socket behind');
  const r = await theVm().exec('echo back');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'back\n');
  const now = masters(controlPath);
  assert.equal(now.length, 1);
  assert.notEqual(now[0], old);

  process.kill(now[0]!, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  const rs = await Promise.all([0, 1, 2, 3].map((i) => kumo(['exec', NAME, '--', 'echo', `r${i}`], { home })));
  rs.forEach((x, i) => assert.deepEqual([x.code, x.stdout], [0, `r${i}\n`], x.stderr));
  assert.equal(masters(controlPath).length, 1, 'one master won the race');
  assert.equal(await probeSocket(controlPath), 'alive');
});

test('exec: env, cwd, user and stdin as the guest sees them', async () => {
  const r = await theVm().exec(['sh', '-c', 'printf "%s|%s|%s|%s" "$GREETING" "$OTHER" "$PWD" "$(id -un)"'], { env: { GREETING: "it's a $test", OTHER: 'two words' }, cwd: '/var/tmp' });
  assert.equal(r.stdout, "it's a $test|two words|/var/tmp|kumo");
  const root = await theVm().exec(['sh', '-c', 'printf "%s|%s|%s" "$(id -un)" "$PWD" "$X"'], { user: 'root', cwd: '/root', env: { X: 'kept through sudo' } });
  assert.equal(root.stdout, 'root|/root|kept through sudo');
  const nobody = await theVm().exec(['id', '-un'], { user: 'nobody' });
  assert.equal(nobody.stdout.trim(), 'nobody');
  const data = randomBytes(100_000);
  const sum = await theVm().exec(['sha256sum'], { stdin: data });
  assert.equal(sum.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'));
  const words = await theVm().exec(['printf', '%s\\n', 'a b', '$HOME', '`id`', "it's", '*']);
  assert.equal(words.stdout, "a b\n$HOME\n`id`\nit's\n*\n");
  const shell = await theVm().exec('echo one two | wc -w');
  assert.equal(shell.stdout.trim(), '2');
  const badCwd = await theVm().exec(['true'], { cwd: '/no/such/folder' });
  assert.notEqual(badCwd.code, 0);
});

test('exec: streaming callbacks get the output as it comes', async () => {
  const seen: string[] = [];
  const r = await theVm().exec('echo first; sleep 1; echo oops >&2; echo second', {
    onStdout: (c) => seen.push(`out:${c.toString()}`),
    onStderr: (c) => seen.push(`err:${c.toString()}`),
  });
  assert.equal(r.stdout, 'first\nsecond\n');
  assert.equal(r.stderr, 'oops\n');
  assert.equal(seen.filter((s) => s.startsWith('out:')).join('').replace(/out:/g, ''), 'first\nsecond\n');
  assert.equal(seen.filter((s) => s.startsWith('err:')).join('').replace(/err:/g, ''), 'oops\n');
  assert.ok(seen[0]!.startsWith('out:first'), 'the first line came before the command ended');
});

test('exec: non-zero exit is a result, or with check a typed error with the output tail; a missing command is 127', async () => {
  const r = await theVm().exec('echo some output; echo the reason >&2; exit 5');
  assert.equal(r.code, 5);
  await assert.rejects(theVm().exec('echo some output; echo the reason >&2; exit 5', { check: true }), (e: Error & { code?: string; details?: { code?: number } }) => {
    assert.equal(e.code, 'EXEC_FAILED');
    assert.equal(e.details?.code, 5);
    assert.match(e.message, /the reason/);
    return true;
  });
  const nf = await theVm().exec(['no-such-program-kumo', '--x']);
  assert.equal(nf.code, 127);
  await assert.rejects(theVm().exec(['no-such-program-kumo', '--x'], { check: true }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'COMMAND_NOT_FOUND');
    assert.match(e.message, /no-such-program-kumo/);
    return true;
  });
});

test('exec: a timeout stops the command in the guest too', async () => {
  const marker = `/tmp/kumo-timeout-${randomBytes(3).toString('hex')}`;
  await assert.rejects(theVm().exec(`echo started; sleep 60; touch ${marker}`, { timeoutMs: 2000 }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'EXEC_TIMEOUT');
    assert.match(e.message, /2000 ms/);
    assert.match(e.message, /started/);
    return true;
  });
  const left = await theVm().exec(['sh', '-c', 'pgrep -f "sleep 6[0]" || echo none']);
  assert.equal(left.stdout.trim(), 'none');
  const quick = await theVm().exec('echo in time', { timeoutMs: 60_000 });
  assert.equal(quick.stdout, 'in time\n');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 1000);
  await assert.rejects(theVm().exec('sleep 30', { signal: ac.signal }), (e: Error & { code?: string }) => e.code === 'INTERRUPTED');
});

async function tree(dir: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = join(rel, e.name);
    if (e.isDirectory()) Object.assign(out, { [`${p}/`]: 'dir' }, await tree(dir, p));
    else out[p] = (await readFile(join(dir, p))).toString('base64');
  }
  return out;
}

test('copyIn / copyOut: a folder round-trips byte for byte', async () => {
  const src = join(work, 'src');
  await mkdir(join(src, 'sub dir', 'deeper'), { recursive: true });
  await writeFile(join(src, 'binary.bin'), randomBytes(300_000));
  await writeFile(join(src, 'sub dir', "it's.txt"), 'quotes and spaces\n');
  await writeFile(join(src, 'sub dir', 'deeper', 'empty'), '');
  await writeFile(join(src, 'top.txt'), 'top\n');
  await theVm().copyIn(src, '/tmp/kumo-copy');
  const inGuest = await theVm().exec(['sh', '-c', 'cd /tmp/kumo-copy && find . -type f | sort && sha256sum binary.bin']);
  assert.match(inGuest.stdout, /\.\/sub dir\/it's\.txt/);
  const back = join(work, 'back');
  await theVm().copyOut('/tmp/kumo-copy', back);
  assert.deepEqual(await tree(back), await tree(src));
  // A single file both ways.
  await theVm().copyIn(join(src, 'top.txt'), '/tmp/one.txt');
  await theVm().copyOut('/tmp/one.txt', join(work, 'one.txt'));
  assert.equal(await readFile(join(work, 'one.txt'), 'utf8'), 'top\n');
  await assert.rejects(theVm().copyIn(join(work, 'missing'), '/tmp/x'), (e: Error & { code?: string }) => e.code === 'FILE_NOT_FOUND');
});

test('stop closes the master; delete leaves none', async () => {
  assert.equal(masters(controlPath).length, 1);
  await theVm().stop();
  assert.equal(masters(controlPath).length, 0);
  assert.equal(await probeSocket(controlPath), 'absent');
  await theVm().delete();
  vm = undefined;
  assert.equal(masters(controlPath).length, 0);
  assert.equal(await probeSocket(controlPath), 'absent');
});
