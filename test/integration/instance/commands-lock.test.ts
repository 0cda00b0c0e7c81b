/**
 * Different commands on one instance, as real CLI processes (QEMU started on a blank disk, no
 * guest to boot): the instance lock lets one through at a time. A command that finds the lock held
 * past its wait fails with LOCKED naming the holder; two commands that race each end with a
 * result that agrees with what the other did (never both proceeding on a state the other changed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { kumo, type CliResult } from '../../helpers/cli.js';
import { pathsFor, type KumoPaths } from '../../../src/config/paths.js';
import { registerBuiltins } from '../../../src/builtins.js';
import { createInstance, instanceFiles } from '../../../src/instance/index.js';
import { listImages } from '../../../src/image/index.js';

registerBuiltins();
process.env.KUMO_ACCEL = 'tcg';
const env = { KUMO_ACCEL: 'tcg' };
const LOCK_JS = fileURLToPath(new URL('../../../src/core/lock.js', import.meta.url));

let dir = '';
let home = '';
let img = '';
let paths: KumoPaths;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-cmdlock-'));
  home = join(dir, 'home');
  paths = pathsFor(home);
  img = join(dir, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '32M']);
});

after(async () => {
  // Whatever a round left running goes with its folder.
  const names = existsSync(paths.instances) ? readdirSync(paths.instances).filter((n) => !n.startsWith('.')) : [];
  if (names.length) await kumo(['delete', '--force', ...names], { home, env });
  await rm(dir, { recursive: true, force: true });
});

const k = (args: string[]) => kumo(args, { home, env, timeoutMs: 120_000 });
const make = (name: string) => createInstance(paths, { name, image: img, memory: '128M' });
/** The result (or error) document of a --json run: stdout without its event lines. */
const result = (r: CliResult): Record<string, any> => {
  const doc = r.stdout.split('\n').filter((l) => !l.startsWith('{"event"')).join('\n').trim();
  try {
    return JSON.parse(doc) as Record<string, any>;
  } catch {
    return {};
  }
};
const errCode = (r: CliResult): string | undefined => result(r).error?.code;
const qemuPid = (name: string) => Number(readFileSync(instanceFiles(paths, name).qemuPid, 'utf8').trim());
/** Whether `pid` runs (a zombie waiting for its parent to reap it does not). */
const alive = (pid: number) => {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st[st.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
};

test('a command finding the instance locked by another command fails with LOCKED naming the holder, changing nothing', async () => {
  const names = ['held-delete', 'held-stop', 'held-capture', 'held-start'];
  for (const n of names) await make(n);
  // A holder process takes the four instances' locks as a 'start' would, and keeps them until told.
  const script = `
    import { acquireLock } from ${JSON.stringify(LOCK_JS)};
    const locks = [];
    for (const p of ${JSON.stringify(names.map((n) => instanceFiles(paths, n).lock))}) locks.push(await acquireLock(p, { op: 'start', what: p }));
    process.stdout.write('held\\n');
    process.stdin.resume();
    process.stdin.on('end', async () => { for (const l of locks) await l.release(); process.exit(0); });
  `;
  const holder = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const [first] = (await once(holder.stdout, 'data')) as [Buffer];
    assert.equal(first.toString(), 'held\n');
    const [del, stop, cap, start] = await Promise.all([
      k(['delete', 'held-delete', '--json']),
      k(['stop', 'held-stop', '--json']),
      k(['capture', 'held-capture', '--image', 'cap', '--no-seal', '--json']),
      k(['start', 'held-start', '--no-wait', '--json']),
    ]);
    for (const [r, n] of [[del, 'held-delete'], [stop, 'held-stop'], [cap, 'held-capture'], [start, 'held-start']] as const) {
      assert.equal(r.code, 5, `${n}: ${r.stdout}${r.stderr}`);
      assert.equal(errCode(r), 'LOCKED', `${n}: ${r.stdout}`);
      const e = result(r).error;
      assert.equal(e.message, `instance '${n}' is busy: process ${holder.pid} is running 'start' on it`);
      assert.equal(e.hint, 'wait for that command to finish and try again');
      assert.equal(existsSync(instanceFiles(paths, n).record), true, `${n}: the record went`);
    }
    assert.deepEqual((await listImages(paths)).map((r) => r.name).filter((x) => x === 'cap'), []);
    const st = await k(['list', '--json']);
    for (const i of JSON.parse(st.stdout) as { name: string; status: string }[]) assert.equal(i.status, 'stopped', `${i.name} is ${i.status}`);
  } finally {
    holder.stdin.end();
    await once(holder, 'close');
  }
});

test('start racing delete, stop racing delete, capture racing start: one goes first, the other sees what it did', async () => {
  for (let i = 0; i < 3; i++) {
    // start --no-wait vs delete (no --force): the delete either removes a stopped instance (the
    // start then finds no instance or a busy one), or finds it running and refuses.
    const a = `sd-${i}`;
    await make(a);
    const [start, del] = await Promise.all([k(['start', a, '--no-wait', '--json']), k(['delete', a, '--json'])]);
    if (del.code === 0) {
      assert.equal(existsSync(instanceFiles(paths, a).dir), false);
      assert.notEqual(start.code, 0, `start and delete of ${a} both succeeded: ${start.stdout}`);
      assert.ok(['INSTANCE_NOT_FOUND', 'LOCKED', 'INSTANCE_INCOMPLETE'].includes(errCode(start) ?? ''), `start of ${a}: ${start.stdout}${start.stderr}`);
    } else {
      assert.equal(start.code, 0, start.stderr);
      assert.equal(del.code, 5, del.stderr);
      assert.equal(errCode(del), 'INSTANCE_RUNNING');
      const pid = qemuPid(a);
      assert.equal(alive(pid), true);
      // stop vs delete on the running instance: the delete refuses while it runs, or deletes it once stopped.
      const [stop, del2] = await Promise.all([k(['stop', a, '--force', '--json']), k(['delete', a, '--json'])]);
      assert.equal(stop.code, 0, stop.stderr);
      if (del2.code === 0) assert.equal(existsSync(instanceFiles(paths, a).dir), false);
      else assert.equal(errCode(del2), 'INSTANCE_RUNNING', del2.stdout + del2.stderr);
      // Either way no QEMU is left running for it.
      assert.equal(alive(pid), false, `QEMU ${pid} of ${a} still runs`);
      if (del2.code !== 0) assert.equal((await k(['delete', a])).code, 0);
    }

    // capture --no-seal vs start: a capture that succeeded copied a stopped disk (it finished
    // before the start took the lock); one that found it running refused and stored nothing.
    const b = `cs-${i}`;
    await make(b);
    const image = `cap-${i}`;
    const [cap, st2] = await Promise.all([k(['capture', b, '--image', image, '--no-seal', '--json']), k(['start', b, '--no-wait', '--json'])]);
    const stored = (await listImages(paths)).find((r) => r.name === image || r.aliases.includes(image));
    if (cap.code === 0) {
      assert.ok(stored, `capture of ${b} succeeded but image ${image} is not stored`);
      if (st2.code === 0) {
        const startedAt = Date.parse((JSON.parse(readFileSync(instanceFiles(paths, b).record, 'utf8')) as { lastStart: { at: string } }).lastStart.at);
        assert.ok(Date.parse(stored.fetchedAt) <= startedAt, `image ${image} was stored (${stored.fetchedAt}) after ${b} started (${new Date(startedAt).toISOString()})`);
      } else assert.equal(errCode(st2), 'LOCKED', st2.stdout + st2.stderr);
    } else {
      assert.equal(cap.code, 5, cap.stdout + cap.stderr);
      assert.ok(['INSTANCE_RUNNING', 'LOCKED'].includes(errCode(cap) ?? ''), cap.stdout);
      assert.equal(stored, undefined, `a refused capture stored ${image}`);
      assert.equal(st2.code, 0, st2.stderr);
    }
    assert.equal((await k(['delete', '--force', b])).code, 0);
  }
});

test('a delete renames the folder away in one step: a command waiting for the lock finds no instance, and a dead delete\u2019s leftovers go', async () => {
  const name = 'gone-at-once';
  await make(name);
  // a folder left by a delete that died half-way (its pid is not running)
  const stale = join(paths.instances, '.deleting-old-2147483646-0badf00d');
  mkdirSync(join(stale, 'sub'), { recursive: true });
  const { lockInstance, removeInstanceFolder } = await import('../../../src/instance/store.js');
  const held = await lockInstance(paths, name, 'delete');
  // another command waits for the lock while the folder is removed under it
  const waiter = lockInstance(paths, name, 'start', 5000).then(
    async (l) => {
      await l.release();
      return 'got the lock';
    },
    (e: { code?: string }) => e.code,
  );
  await removeInstanceFolder(paths, name);
  await held.release();
  assert.equal(await waiter, 'INSTANCE_NOT_FOUND');
  assert.deepEqual(readdirSync(paths.instances).filter((n) => n === name || n.startsWith('.deleting-')), [], 'nothing left: not the folder, not the stale one');
  const ls = await k(['list', '--json']);
  assert.equal((JSON.parse(ls.stdout) as { name: string }[]).some((i) => i.name === name), false);
});
