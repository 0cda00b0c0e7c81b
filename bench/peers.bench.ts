/**
 * kumo side by side with the tools users would otherwise use, on one machine, in one run, with the
 * same image (kumo's test image) and the same machine shape (2 vCPUs, 1 GiB, QEMU user networking
 * with ssh forwarded to 127.0.0.1):
 *   node dist/bench/peers.bench.js [--rounds N] [--commands N] [--only kumo,testcloud,vagrant] [--no-test] [--max-minutes N]
 * (--no-test: only the time-to-ssh part, not the launch + commands + delete test)
 * (root: the libvirt peers run against the tests' own libvirtd, test/helpers/libvirtd.ts).
 *
 * - kumo (CLI): `kumo launch IMAGE --cold` (a boot) and `kumo launch IMAGE` restoring a warm
 *   template of the same shape (`kumo image warm`), then `kumo exec NAME true`; `kumo delete --force`.
 * - testcloud's way: `qemu-img create -b` + `cloud-localds` + `virt-install --import`, then polling
 *   the ssh port once a second for sshd's banner as testcloud does, then `ssh ... true`;
 *   `virsh destroy` + `virsh undefine` + removing the overlay and seed.
 * - Vagrant with vagrant-libvirt: a box of the test image (+ the `vagrant` element),
 *   `vagrant up --provider libvirt`, then `vagrant ssh -c true`; `vagrant destroy -f`.
 * The tools take turns (kumo, testcloud, vagrant, kumo, ...) so the machine's load touches each alike.
 *
 * Figures per tool: wall time from the command to the first working ssh command (median of the
 * rounds), host CPU seconds to that point (the guest's QEMU process from /proc/PID/stat, the tool's
 * own processes as this process's reaped children from /proc/self/stat cutime+cstime, and the
 * libvirt daemon's /proc/PID/stat delta for the libvirt peers), disk used by the instance (blocks of
 * its files, not the shared base image), teardown time. Then a test: launch, 20 commands, delete
 * (kumo's library in this process against Vagrant's CLI driven from here). Ratios against kumo are
 * printed; nothing is asserted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, lstatSync, writeFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../src/index.js';
import { median } from './lib.js';
import { sleep } from '../src/core/time.js';
import { testImagePath } from '../test/helpers/test-image.js';
import { startLibvirtd, STATE as LIBVIRTD_STATE } from '../test/helpers/libvirtd.js';
import { ensureBox } from './peers/box.js';
import { SHAPE, cpuSecondsFromStat, findGuestPid, ratioText, testcloudSeed, vagrantfile, virtInstallArgv } from './peers/plan.js';

const args = process.argv.slice(2);
const opt = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
const ROUNDS = Number(opt('--rounds')) || 3;
const COMMANDS = Number(opt('--commands')) || 20;
const ONLY = (opt('--only') ?? 'kumo,testcloud,vagrant').split(',');
const TEST = !args.includes('--no-test');
/** Start no new step after this many minutes (the summary then covers the rounds done). */
const MAX_MINUTES = Number(opt('--max-minutes')) || Infinity;
const STARTED = Date.now();
const bin = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'kumo.js');
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const BOX = 'kumo-peers';

// ---- measuring ----------------------------------------------------------------------------------

const now = () => Number(process.hrtime.bigint()) / 1e6;
const childCpu = () => cpuSecondsFromStat(readFileSync('/proc/self/stat', 'utf8'), TICKS, { children: true }) - cpuSecondsFromStat(readFileSync('/proc/self/stat', 'utf8'), TICKS);
const pidCpu = (pid: number | undefined) => {
  if (!pid) return NaN;
  try {
    return cpuSecondsFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), TICKS);
  } catch {
    return NaN;
  }
};
function libvirtdPid(): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(LIBVIRTD_STATE, 'daemon.json'), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}
function guestPid(domain: string): number | undefined {
  const all: Array<{ pid: number; cmdline: string }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      all.push({ pid: Number(d), cmdline: readFileSync(`/proc/${d}/cmdline`, 'latin1') });
    } catch {
      /* gone */
    }
  }
  return findGuestPid(all, domain);
}
/** Bytes on disk of files (folders walked; symlinks not followed). */
function du(paths: string[]): number {
  let n = 0;
  const walk = (p: string) => {
    let s;
    try {
      s = lstatSync(p);
    } catch {
      return;
    }
    n += s.blocks * 512;
    if (s.isDirectory()) for (const c of readdirSync(p)) walk(join(p, c));
  };
  for (const p of paths) walk(p);
  return n;
}

function run(argv: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; allowFail?: boolean; timeoutMs?: number } = {}): { status: number | null; out: string; stdout: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: o.env ?? process.env, cwd: o.cwd, maxBuffer: 64 << 20, timeout: o.timeoutMs ?? 1_800_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0 && !o.allowFail) {
    const full = join(tmpdir(), `kumo-bench-peers-failed-${process.pid}-${Date.now()}.log`);
    writeFileSync(full, `${argv.join(' ')}\n${out}`);
    throw new Error(`${argv.join(' ')} exited with ${r.status ?? r.signal} (whole output: ${full}):\n${out.slice(-3000)}`);
  }
  return { status: r.status, out, stdout: r.stdout ?? '' };
}
function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}
/** testcloud's wait: connect to the port once a second until sshd's banner comes. */
function sshBanner(port: number): Promise<boolean> {
  return new Promise((res) => {
    const c = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean) => {
      c.destroy();
      res(ok);
    };
    c.setTimeout(5000, () => done(false));
    c.on('data', (d) => {
      data += d.toString('latin1');
      if (data.includes('\n')) done(data.startsWith('SSH-'));
    });
    c.on('error', () => done(false));
    c.on('close', () => done(data.startsWith('SSH-')));
  });
}

interface Sample {
  readyMs: number;
  guestCpu: number;
  toolCpu: number;
  daemonCpu: number;
  diskBytes: number;
  teardownMs: number;
  note?: string;
}
interface WorkloadSample {
  totalMs: number;
  cpu: number;
}

// ---- the peers ----------------------------------------------------------------------------------

const dir = await mkdtemp(join(tmpdir(), 'kumo-bench-peers-'));
const home = join(dir, 'kumo-home');
const kenv = { ...process.env, KUMO_HOME: home };
const kumo = (...a: string[]) => run([process.execPath, bin, ...a], { env: kenv });
const image = testImagePath();
const made: { domains: string[]; vagrantDirs: string[] } = { domains: [], vagrantDirs: [] };
let uri = '';
let venv: NodeJS.ProcessEnv = {};
let release: (() => Promise<void>) | undefined;

async function kumoCli(name: string, ref: string, cold: boolean): Promise<Sample> {
  const c0 = childCpu();
  const t0 = now();
  kumo('launch', ref, '--name', name, '--cpus', String(SHAPE.cpus), '--memory', `${SHAPE.memoryMiB}M`, '--timeout', '1800', ...(cold ? ['--cold'] : []));
  kumo('exec', name, 'true');
  const readyMs = now() - t0;
  const toolCpu = childCpu() - c0;
  const inst = join(home, 'instances', name);
  const pid = Number(readFileSync(join(inst, 'qemu.pid'), 'utf8').trim());
  const guestCpu = pidCpu(pid);
  const diskBytes = du([inst]);
  const t1 = now();
  kumo('delete', '--force', name);
  return { readyMs, guestCpu, toolCpu, daemonCpu: 0, diskBytes, teardownMs: now() - t1 };
}

async function testcloudWay(name: string, key: string): Promise<Sample> {
  const h = join(dir, name);
  await mkdir(h);
  const seed = testcloudSeed(name, await readFile(`${key}.pub`, 'utf8'));
  await writeFile(join(h, 'user-data'), seed.userData);
  await writeFile(join(h, 'meta-data'), seed.metaData);
  const port = await freePort();
  const d0 = pidCpu(libvirtdPid());
  const c0 = childCpu();
  const t0 = now();
  run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image, join(h, 'disk.qcow2')]);
  run(['cloud-localds', join(h, 'seed.iso'), join(h, 'user-data'), join(h, 'meta-data')]);
  made.domains.push(name);
  run(virtInstallArgv({ uri, name, disk: join(h, 'disk.qcow2'), seed: join(h, 'seed.iso'), port }));
  const deadline = t0 + 1_800_000;
  while (!(await sshBanner(port))) {
    if (now() > deadline) throw new Error(`${name}: sshd never answered on port ${port}`);
    await sleep(1000);
  }
  const ssh = ['ssh', '-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', 'debian@127.0.0.1', 'true'];
  while (run(ssh, { allowFail: true }).status !== 0) {
    if (now() > deadline) throw new Error(`${name}: ssh never worked on port ${port}`);
    await sleep(1000);
  }
  const readyMs = now() - t0;
  const toolCpu = childCpu() - c0;
  const guestCpu = pidCpu(guestPid(name));
  const daemonCpu = pidCpu(libvirtdPid()) - d0;
  const diskBytes = du([join(h, 'disk.qcow2'), join(h, 'seed.iso')]);
  const t1 = now();
  run(['virsh', '-q', '-c', uri, 'destroy', name]);
  run(['virsh', '-q', '-c', uri, 'undefine', name]);
  await rm(h, { recursive: true, force: true });
  const teardownMs = now() - t1;
  made.domains = made.domains.filter((d) => d !== name);
  return { readyMs, guestCpu, toolCpu, daemonCpu, diskBytes, teardownMs };
}

const poolName = `kumo-peers-${process.pid}`;
const poolPath = join(dir, 'pool');

function domainsNow(): string[] {
  return run(['virsh', '-q', '-c', uri, 'list', '--all', '--name']).out.split('\n').map((l) => l.trim()).filter(Boolean);
}

async function vagrantProject(name: string): Promise<{ cwd: string; env: NodeJS.ProcessEnv }> {
  const cwd = join(dir, name);
  await mkdir(cwd);
  await writeFile(join(cwd, 'Vagrantfile'), vagrantfile({ box: BOX, uri, pool: poolName, poolPath, port: await freePort() }));
  made.vagrantDirs.push(cwd);
  return { cwd, env: { ...venv, VAGRANT_CWD: cwd } };
}
function vagrant(p: { cwd: string; env: NodeJS.ProcessEnv }, ...a: string[]): string {
  return run(['vagrant', ...a], { env: p.env, cwd: p.cwd }).out;
}
async function vagrantDestroy(p: { cwd: string; env: NodeJS.ProcessEnv }): Promise<void> {
  vagrant(p, 'destroy', '-f');
  made.vagrantDirs = made.vagrantDirs.filter((d) => d !== p.cwd);
}

async function vagrantWay(name: string): Promise<Sample> {
  const p = await vagrantProject(name);
  const before = new Set(domainsNow());
  const poolBefore = new Set(existsSync(poolPath) ? readdirSync(poolPath) : []);
  const d0 = pidCpu(libvirtdPid());
  const c0 = childCpu();
  const t0 = now();
  vagrant(p, 'up', '--provider', 'libvirt');
  vagrant(p, 'ssh', '-c', 'true');
  const readyMs = now() - t0;
  const toolCpu = childCpu() - c0;
  const domain = domainsNow().find((d) => !before.has(d));
  const guestCpu = pidCpu(domain ? guestPid(domain) : undefined);
  const daemonCpu = pidCpu(libvirtdPid()) - d0;
  const fresh = readdirSync(poolPath).filter((f) => !poolBefore.has(f));
  // the box's base volume is uploaded into the pool by the first `vagrant up`: not the instance's
  const own = fresh.filter((f) => domain && f.startsWith(domain));
  const diskBytes = du([...own.map((f) => join(poolPath, f)), join(p.cwd, '.vagrant')]);
  const t1 = now();
  await vagrantDestroy(p);
  const teardownMs = now() - t1;
  await rm(p.cwd, { recursive: true, force: true });
  return { readyMs, guestCpu, toolCpu, daemonCpu, diskBytes, teardownMs, ...(fresh.length > own.length ? { note: `this up also uploaded the box into the pool (${fresh.filter((f) => !own.includes(f)).join(', ')})` } : {}) };
}

async function kumoLibTest(name: string, ref: string): Promise<WorkloadSample> {
  const u0 = process.cpuUsage();
  const c0 = childCpu();
  const t0 = now();
  const vm = await launch({ image: ref, cpus: SHAPE.cpus, memory: SHAPE.memoryMiB, name, home, timeout: 1800 });
  for (let i = 0; i < COMMANDS; i++) await vm.exec(['sh', '-c', `echo ${i} > /tmp/n && cat /tmp/n`], { check: true });
  const guest = pidCpu((await vm.status()).pid);
  await vm.delete();
  const totalMs = now() - t0;
  const u = process.cpuUsage(u0);
  return { totalMs, cpu: (u.user + u.system) / 1e6 + (childCpu() - c0) + guest };
}

async function vagrantTest(name: string): Promise<WorkloadSample> {
  const p = await vagrantProject(name);
  const before = new Set(domainsNow());
  const c0 = childCpu();
  const d0 = pidCpu(libvirtdPid());
  const t0 = now();
  vagrant(p, 'up', '--provider', 'libvirt');
  for (let i = 0; i < COMMANDS; i++) vagrant(p, 'ssh', '-c', `echo ${i} > /tmp/n && cat /tmp/n`);
  const domain = domainsNow().find((d) => !before.has(d));
  const guest = pidCpu(domain ? guestPid(domain) : undefined);
  const daemon = pidCpu(libvirtdPid()) - d0;
  await vagrantDestroy(p);
  const totalMs = now() - t0;
  await rm(p.cwd, { recursive: true, force: true });
  return { totalMs, cpu: childCpu() - c0 + guest + daemon };
}

// ---- the run ------------------------------------------------------------------------------------

const results: Record<string, Sample[]> = {};
const workloads: Record<string, WorkloadSample[]> = {};
const add = <T>(m: Record<string, T[]>, k: string, v: T) => (m[k] ??= []).push(v);
const fmtS = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmtMiB = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const log = (s: string) => console.log(s);

try {
  if (process.getuid?.() !== 0) throw new Error('the peers bench needs root (the libvirt peers run against the tests\' libvirtd)');
  const missing = [ONLY.includes('testcloud') && ['virt-install', 'cloud-localds'], ONLY.includes('vagrant') && ['vagrant']].flat().filter((t): t is string => !!t && spawnSync('which', [t]).status !== 0);
  if (missing.length) throw new Error(`missing: ${missing.join(', ')} (apt-get install virtinst cloud-image-utils vagrant vagrant-libvirt; .ci/run does it with KUMO_BENCH_PEERS=1)`);
  log(`peers bench: ${ROUNDS} rounds of ${ONLY.join(', ')}; image ${image}; shape ${SHAPE.cpus} vCPUs, ${SHAPE.memoryMiB} MiB, user networking with ssh on 127.0.0.1; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);

  // one-time preparation of each tool (not in the figures; printed)
  let t = now();
  let ref = image;
  if (ONLY.includes('kumo')) {
    ref = (JSON.parse(kumo('create', image, '--name', 'prep', '--json').stdout) as { image: { id: string } }).image.id;
    kumo('delete', 'prep');
    log(`kumo: image imported into its store in ${fmtS(now() - t)} (${fmtMiB(du([join(home, 'images')]))})`);
    t = now();
    kumo('image', 'warm', ref, '--cpus', String(SHAPE.cpus), '--memory', `${SHAPE.memoryMiB}M`, '--timeout', '1800');
    log(`kumo: warm template made in ${fmtS(now() - t)} (${fmtMiB(du([join(home, 'templates')]))} on disk)`);
  }
  if (ONLY.includes('testcloud') || ONLY.includes('vagrant')) {
    const d = await startLibvirtd();
    uri = d.uri;
    release = () => d.release();
    log(`libvirt: the tests' libvirtd, ${uri}`);
  }
  const key = join(dir, 'id_ed25519');
  run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key]);
  if (ONLY.includes('vagrant')) {
    t = now();
    const box = await ensureBox((s) => log(`  ${s}`));
    log(`vagrant: box ready in ${fmtS(now() - t)} (${box.box})`);
    venv = { ...process.env, VAGRANT_HOME: join(dir, 'vagrant-home'), VAGRANT_CHECKPOINT_DISABLE: '1', VAGRANT_BOX_UPDATE_CHECK_DISABLE: '1', VAGRANT_DEFAULT_PROVIDER: 'libvirt', VAGRANT_NO_COLOR: '1' };
    // vagrant-libvirt creates only a pool named 'default' by itself: the bench's own pool, as a user would make it
    await mkdir(poolPath, { recursive: true });
    run(['virsh', '-q', '-c', uri, 'pool-define-as', poolName, 'dir', '--target', poolPath]);
    run(['virsh', '-q', '-c', uri, 'pool-start', poolName]);
    t = now();
    run(['vagrant', 'box', 'add', '--name', BOX, box.box], { env: venv, cwd: dir });
    log(`vagrant: box added in ${fmtS(now() - t)} (${fmtMiB(du([join(dir, 'vagrant-home', 'boxes')]))} in VAGRANT_HOME)`);
  }

  for (let r = 0; r < ROUNDS; r++) {
    log(`\n# round ${r + 1}/${ROUNDS} (load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`);
    const steps: Array<[string, () => Promise<Sample | WorkloadSample>, 'ready' | 'test']> = [];
    if (ONLY.includes('kumo')) steps.push(['kumo launch --cold', () => kumoCli(`cold-${r}`, ref, true), 'ready'], ['kumo launch (warm clone)', () => kumoCli(`warm-${r}`, ref, false), 'ready']);
    if (ONLY.includes('testcloud')) steps.push(["testcloud's way", () => testcloudWay(`peers-tc-${r}`, key), 'ready']);
    if (ONLY.includes('vagrant')) steps.push(['vagrant up (libvirt)', () => vagrantWay(`vagrant-${r}`), 'ready']);
    if (TEST && ONLY.includes('kumo')) steps.push(['kumo library', () => kumoLibTest(`lib-${r}`, ref), 'test']);
    if (TEST && ONLY.includes('vagrant')) steps.push(['vagrant CLI from a script', () => vagrantTest(`vtest-${r}`), 'test']);
    for (const [name, fn, kind] of steps) {
      if ((Date.now() - STARTED) / 60000 > MAX_MINUTES) {
        log(`${name}: not run (--max-minutes ${MAX_MINUTES} reached)`);
        continue;
      }
      try {
        const s = await fn();
        if (kind === 'ready') {
          const x = s as Sample;
          add(results, name, x);
          log(`${name.padEnd(28)} ready ${fmtS(x.readyMs).padStart(8)}  cpu guest ${x.guestCpu.toFixed(1)} s, tool ${x.toolCpu.toFixed(1)} s, libvirtd ${x.daemonCpu.toFixed(1)} s  disk ${fmtMiB(x.diskBytes)}  teardown ${fmtS(x.teardownMs)}${x.note ? `  (${x.note})` : ''}`);
        } else {
          const x = s as WorkloadSample;
          add(workloads, name, x);
          log(`${name.padEnd(28)} launch + ${COMMANDS} commands + delete ${fmtS(x.totalMs)}  cpu ${x.cpu.toFixed(1)} s`);
        }
      } catch (e) {
        log(`${name}: FAILED: ${(e as Error).message}`);
      }
    }
  }

  // medians and ratios
  const kc = results['kumo launch --cold'];
  const kw = results['kumo launch (warm clone)'];
  const m = (xs: Sample[] | undefined, f: (s: Sample) => number) => (xs?.length ? median(xs.map(f)) : NaN);
  log(`\n## time to a working ssh command, host CPU, disk, teardown (medians; ratios against kumo --cold / kumo warm)`);
  for (const [name, xs] of Object.entries(results)) {
    const ready = m(xs, (s) => s.readyMs);
    const cpu = m(xs, (s) => s.guestCpu + s.toolCpu + s.daemonCpu);
    const disk = m(xs, (s) => s.diskBytes);
    const down = m(xs, (s) => s.teardownMs);
    log(
      `${name.padEnd(28)} n=${xs.length}  ready ${fmtS(ready).padStart(8)} (${ratioText(ready, m(kc, (s) => s.readyMs))} / ${ratioText(ready, m(kw, (s) => s.readyMs))})` +
        `  cpu ${cpu.toFixed(1)} s (${ratioText(cpu, m(kc, (s) => s.guestCpu + s.toolCpu + s.daemonCpu))} / ${ratioText(cpu, m(kw, (s) => s.guestCpu + s.toolCpu + s.daemonCpu))})` +
        `  disk ${fmtMiB(disk)} (${ratioText(disk, m(kc, (s) => s.diskBytes))} / ${ratioText(disk, m(kw, (s) => s.diskBytes))})` +
        `  teardown ${fmtS(down)} (${ratioText(down, m(kc, (s) => s.teardownMs))} / ${ratioText(down, m(kw, (s) => s.teardownMs))})`,
    );
  }
  const kl = workloads['kumo library'];
  log(`\n## test: launch, ${COMMANDS} commands, delete (medians; ratio against kumo's library)`);
  for (const [name, xs] of Object.entries(workloads)) {
    const total = median(xs.map((x) => x.totalMs));
    const cpu = median(xs.map((x) => x.cpu));
    log(`${name.padEnd(28)} n=${xs.length}  ${fmtS(total).padStart(8)} (${ratioText(total, kl?.length ? median(kl.map((x) => x.totalMs)) : NaN)})  cpu ${cpu.toFixed(1)} s (${ratioText(cpu, kl?.length ? median(kl.map((x) => x.cpu)) : NaN)})`);
  }
  log(`\nload at the end ${readFileSync('/proc/loadavg', 'utf8').trim()}; ${basename(dir)} removed`);
} finally {
  for (const cwd of made.vagrantDirs) run(['vagrant', 'destroy', '-f'], { env: { ...venv, VAGRANT_CWD: cwd }, cwd, allowFail: true });
  for (const d of made.domains) {
    run(['virsh', '-q', '-c', uri, 'destroy', d], { allowFail: true });
    run(['virsh', '-q', '-c', uri, 'undefine', d], { allowFail: true });
  }
  if (uri) {
    run(['virsh', '-q', '-c', uri, 'pool-destroy', poolName], { allowFail: true });
    run(['virsh', '-q', '-c', uri, 'pool-undefine', poolName], { allowFail: true });
  }
  if (existsSync(home)) run([process.execPath, bin, 'delete', '--all', '--force'], { env: kenv, allowFail: true });
  await release?.();
  await rm(dir, { recursive: true, force: true });
}

