/**
 * kill -9 fault injection: kumo commands (create, start --no-wait, stop, delete, snapshot create,
 * image pull from 127.0.0.1) are killed with SIGKILL at a random moment (seeded), then the home
 * is checked:
 *   - `kumo list` works and names exactly the instance folders;
 *   - a folder without instance.json is listed as incomplete and `kumo delete` removes it;
 *   - no QEMU of this home runs that an instance folder's qemu.pid does not name;
 *   - every stored image's data file hashes to its id (the digest in its metadata);
 *   - the next command on the same name works (delete --force, then create again).
 * QEMU runs on a tiny blank disk (no guest boots). 20 runs in CI; KUMO_FULL_FAULTS=1 runs 100.
 * KUMO_FAULT_SEED=N repeats a run; the seed is printed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm, readdir, readFile } from 'node:fs/promises';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KUMO_BIN, kumo } from '../../helpers/cli.js';
import { startServer, sha256, type TestServer } from '../../helpers/http-server.js';
import { prng, int, pick } from '../fuzz/harness.js';

const RUNS = process.env.KUMO_FULL_FAULTS === '1' ? 100 : 20;
const SEED = process.env.KUMO_FAULT_SEED !== undefined ? Number(process.env.KUMO_FAULT_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
let home = '';
let server: TestServer;
let imgUrl = '';
let imgSum = '';
const sums: string[] = [];

function makeQcow2(path: string, fill: string): Buffer {
  const raw = `${path}.raw`;
  const b = Buffer.alloc(4 * 1024 * 1024);
  b.write(fill.repeat(100));
  writeFileSync(raw, b);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path]);
  return readFileSync(path);
}

/** Run kumo and SIGKILL it after `killAfterMs` (if still running). */
function killed(args: string[], killAfterMs: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [KUMO_BIN, ...args], { env: { ...process.env, KUMO_HOME: home }, stdio: 'ignore' });
    const t = setTimeout(() => c.kill('SIGKILL'), killAfterMs);
    c.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

function qemuPidsOfHome(): { pid: number; pidFile: string }[] {
  const out: { pid: number; pidFile: string }[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) === 'Z') continue;
    } catch {
      continue;
    }
    const i = argv.indexOf('-pidfile');
    if (/qemu-system/.test(argv[0] ?? '') && i >= 0 && argv[i + 1]!.startsWith(home + '/')) out.push({ pid: Number(p), pidFile: argv[i + 1]! });
  }
  return out;
}

async function checkInvariants(where: string): Promise<void> {
  const l = await kumo(['list', '--json'], { home });
  assert.equal(l.code, 0, `${where}: kumo list failed: ${l.stderr}`);
  const listed = (JSON.parse(l.stdout) as { name: string; status: string }[]).map((x) => x.name).sort();
  const folders = (await readdir(join(home, 'instances')).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
  assert.deepEqual(listed, folders, `${where}: kumo list agrees with the folders`);
  for (const name of folders) {
    if (existsSync(join(home, 'instances', name, 'instance.json'))) continue;
    const st = (JSON.parse(l.stdout) as { name: string; status: string }[]).find((x) => x.name === name)!;
    assert.equal(st.status, 'incomplete', `${where}: ${name} has no instance.json and is listed as ${st.status}`);
  }
  // No QEMU of this home that no instance's qemu.pid names.
  for (const q of qemuPidsOfHome()) {
    const named = existsSync(q.pidFile) ? Number(readFileSync(q.pidFile, 'utf8').trim()) : undefined;
    const folder = join(q.pidFile, '..');
    assert.ok(named === q.pid && existsSync(join(folder, 'instance.json')), `${where}: stray QEMU ${q.pid} (${q.pidFile})`);
  }
  // Every stored image is what its metadata says.
  const images = join(home, 'images');
  for (const f of (await readdir(images).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}\.json$/.test(n))) {
    const meta = JSON.parse(await readFile(join(images, f), 'utf8')) as { id: string; path: string; digest: string };
    assert.equal(meta.digest, `sha256:${meta.id}`);
    const h = createHash('sha256').update(await readFile(meta.path)).digest('hex');
    assert.equal(h, meta.id, `${where}: image ${meta.id} hashes to ${h}`);
  }
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-fault-'));
  const dir = await mkdtemp(join(tmpdir(), 'kumo-fault-img-'));
  server = await startServer();
  const img = makeQcow2(join(dir, 'base.qcow2'), 'base');
  server.put('/base.qcow2', img);
  imgUrl = `${server.url}/base.qcow2`;
  imgSum = `sha256:${sha256(img)}`;
  for (let i = 0; i < RUNS; i++) {
    const b = makeQcow2(join(dir, `i${i}.qcow2`), `img-${i}-`);
    server.put(`/img-${i}.qcow2`, b);
    sums.push(`sha256:${sha256(b)}`);
  }
  await rm(dir, { recursive: true, force: true });
  const r = await kumo(['image', 'pull', imgUrl, '--checksum', imgSum], { home });
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  for (const name of (await readdir(join(home, 'instances')).catch(() => [] as string[])).filter((n) => !n.startsWith('.'))) await kumo(['delete', '--force', name], { home });
  for (const q of qemuPidsOfHome()) process.kill(q.pid, 'SIGKILL');
  await server.close();
  await rm(home, { recursive: true, force: true });
});

test(`kill -9 at random moments, ${RUNS} runs (seed ${SEED}): list, folders, processes and the image store stay consistent`, { timeout: 600_000 }, async () => {
  console.log(`fault seed ${SEED} (repeat: KUMO_FAULT_SEED=${SEED} KUMO_TEST_FILTER=fault node test/run.js integration)`);
  const r = prng(SEED);
  const counts: Record<string, number> = {};
  const names = ['fa', 'fb'];
  for (let i = 0; i < RUNS; i++) {
    const name = pick(r, names);
    const exists = existsSync(join(home, 'instances', name, 'instance.json'));
    const ops = exists ? ['start', 'stop', 'delete', 'snapshot', 'pull'] : ['create', 'create', 'pull'];
    const op = pick(r, ops);
    const args =
      op === 'create' ? ['create', imgSum.slice(7), '--name', name, '--memory', '128M', '--cpus', '1', '--accel', 'tcg']
      : op === 'start' ? ['start', '--no-wait', name]
      : op === 'stop' ? ['stop', '--force', name]
      : op === 'delete' ? ['delete', '--force', name]
      : op === 'snapshot' ? ['snapshot', 'create', name, `s${i}`]
      : ['image', 'pull', `${server.url}/img-${i}.qcow2`, '--checksum', sums[i]!];
    // A third of the commands run to the end (so that later runs find instances to start, stop,
    // snapshot and delete); the others are killed somewhere in their first seconds.
    const killAt = r() < 0.35 ? 120_000 : 100 + int(r, 4000);
    const res = await killed(args, killAt);
    const key = `${op} ${res.signal === 'SIGKILL' ? 'killed' : `exit ${res.code}`}`;
    counts[key] = (counts[key] ?? 0) + 1;
    const where = `run ${i} (${args.join(' ')}, ${res.signal === 'SIGKILL' ? `killed at ${killAt} ms` : `exit ${res.code}`})`;
    await checkInvariants(where);
    // Something half-made is removable, and the name is usable again.
    if (!existsSync(join(home, 'instances', name, 'instance.json')) && existsSync(join(home, 'instances', name))) {
      const d = await kumo(['delete', '--force', name], { home });
      assert.equal(d.code, 0, `${where}: delete of the half-made instance: ${d.stderr}`);
      assert.equal(existsSync(join(home, 'instances', name)), false);
    }
  }
  // The next commands on the same names work.
  for (const name of names) {
    await kumo(['delete', '--force', name], { home });
    const c = await kumo(['create', imgSum.slice(7), '--name', name, '--memory', '128M', '--cpus', '1'], { home });
    assert.equal(c.code, 0, c.stderr);
    const d = await kumo(['delete', '--force', name], { home });
    assert.equal(d.code, 0, d.stderr);
  }
  await checkInvariants('at the end');
  console.log(`fault runs: ${JSON.stringify(counts)}`);
});
