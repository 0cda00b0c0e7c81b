/**
 * kumo's own overhead per launch, and `kumo list` with 200 instances.
 *   node dist/bench/launch.bench.js [--runs N]
 *
 * 1. Host-side time of a launch without waiting for the guest (`kumo launch --no-wait`: validate,
 *    resolve the stored image, host key, overlay, seed, accelerator (cached), spawn QEMU until it
 *    has daemonized) against the same steps by hand as testcloud does them: `qemu-img create -b`,
 *    `cloud-localds`, `qemu-system-x86_64 -daemonize`. Guest boot time is not in either figure.
 * 2. `kumo list --json` over 200 stopped instances (folders copied from one real instance) against
 *    the bare reading of their 200 instance.json files (`find ... -exec cat`).
 */
import { mkdtemp, rm, writeFile, readFile, cp, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { median, report, timeCommand } from './lib.js';
import { testImageCachedPath } from '../test/helpers/test-image.js';

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 5;
const bin = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'kumo.js');

function killPidFile(p: string): void {
  try {
    process.kill(Number(execFileSync('cat', [p]).toString().trim()), 'SIGKILL');
  } catch {
    /* gone */
  }
}

const dir = await mkdtemp(join(tmpdir(), 'kumo-bench-launch-'));
const home = join(dir, 'home');
const env = { ...process.env, KUMO_HOME: home };
const kumo = (...a: string[]) => execFileSync(process.execPath, [bin, ...a], { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
try {
  let base = testImageCachedPath();
  let note = 'the built test image';
  if (!existsSync(base)) {
    base = join(dir, 'blank.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '2G']);
    note = 'a blank 2G qcow2 (test image not built)';
  }
  // Warm-up: import the image into the store, make kumo's key, probe the accelerator.
  const warm = JSON.parse(kumo('create', base, '--name', 'warm', '--json'));
  const imageRef: string = warm.image.id;
  kumo('delete', 'warm');

  // 1. launch overhead, interleaved
  const kumoTimes: number[] = [];
  const handTimes: number[] = [];
  const ud = join(dir, 'user-data');
  await writeFile(ud, '#cloud-config\nusers: [default]\n');
  for (let i = 0; i < RUNS; i++) {
    const name = `bench-${i}`;
    kumoTimes.push(...timeCommand([process.execPath, bin, 'launch', imageRef, '--name', name, '--no-wait', '--memory', '512M', '--cpus', '1'], 1, env));
    spawnSync(process.execPath, [bin, 'delete', '--force', name], { env, stdio: 'ignore' });

    const h = join(dir, `hand-${i}`);
    await mkdir(h);
    await writeFile(join(h, 'meta-data'), `instance-id: hand-${i}\nlocal-hostname: hand-${i}\n`);
    const t0 = process.hrtime.bigint();
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, join(h, 'disk.qcow2')]);
    execFileSync('cloud-localds', [join(h, 'seed.iso'), ud, join(h, 'meta-data')]);
    execFileSync('qemu-system-x86_64', [
      '-machine', 'q35', '-accel', 'tcg,thread=multi', '-m', '512', '-smp', '1', '-nodefaults', '-display', 'none',
      '-drive', `file=${join(h, 'disk.qcow2')},if=virtio,format=qcow2`, '-drive', `file=${join(h, 'seed.iso')},if=virtio,format=raw,readonly=on`,
      '-netdev', 'user,id=n0,hostfwd=tcp:127.0.0.1:0-:22', '-device', 'virtio-net-pci,netdev=n0',
      '-serial', `file:${join(h, 'serial.log')}`, '-pidfile', join(h, 'qemu.pid'), '-daemonize',
    ]);
    handTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
    killPidFile(join(h, 'qemu.pid'));
    await rm(h, { recursive: true, force: true });
  }
  const km = median(kumoTimes);
  const hm = median(handTimes);
  report(`launch overhead, host side, no guest boot (${RUNS} runs each, base: ${note})`, [
    { name: 'by hand (qemu-img + cloud-localds + qemu)', medianMs: hm },
    { name: 'kumo launch --no-wait (process, incl. node start)', medianMs: km, baseline: 'by hand', ratio: km / hm, note: `extra ${(km - hm).toFixed(0)} ms` },
  ]);

  // 1b. (--ready, slow: two TCG boots per run) time to ready: kumo launch (ssh + cloud-init for this
  // instance-id) against the testcloud way by hand: qemu, then poll ssh once a second (testcloud's
  // loop) until `cloud-init status --wait` returns. virt-install is not installed here, so the
  // by-hand run uses the same QEMU command line as above rather than libvirt's defaults.
  if (args.includes('--ready')) {
    const readyRuns = Number(args[args.indexOf('--ready-runs') + 1]) || 1;
    const kumoReady: number[] = [];
    const handReady: number[] = [];
    const key = join(home, 'keys', 'id_ed25519');
    for (let i = 0; i < readyRuns; i++) {
      kumoReady.push(...timeCommand([process.execPath, bin, 'launch', imageRef, '--name', `ready-${i}`, '--memory', '1G'], 1, env));
      spawnSync(process.execPath, [bin, 'delete', '--force', `ready-${i}`], { env, stdio: 'ignore' });
      const h = join(dir, `hand-ready-${i}`);
      await mkdir(h);
      const pub = await readFile(`${key}.pub`, 'utf8');
      await writeFile(join(h, 'user-data'), `#cloud-config\nssh_authorized_keys: ["${pub.trim()}"]\n`);
      await writeFile(join(h, 'meta-data'), `instance-id: hand-ready-${i}\nlocal-hostname: hand\n`);
      const port = 20000 + Math.floor(Math.random() * 20000);
      const t0 = process.hrtime.bigint();
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, join(h, 'disk.qcow2')]);
      execFileSync('cloud-localds', [join(h, 'seed.iso'), join(h, 'user-data'), join(h, 'meta-data')]);
      execFileSync('qemu-system-x86_64', [
        '-machine', 'q35', '-accel', 'tcg,thread=multi', '-cpu', 'max', '-m', '1024', '-smp', '2', '-nodefaults', '-display', 'none',
        '-drive', `file=${join(h, 'disk.qcow2')},if=virtio,format=qcow2`, '-drive', `file=${join(h, 'seed.iso')},if=virtio,format=raw,readonly=on`,
        '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', 'virtio-net-pci,netdev=n0', '-device', 'virtio-rng-pci',
        '-serial', `file:${join(h, 'serial.log')}`, '-pidfile', join(h, 'qemu.pid'), '-daemonize',
      ]);
      let ready = false;
      for (;;) {
        const r = spawnSync('ssh', ['-i', key, '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'debian@127.0.0.1', 'cloud-init status --wait'], { stdio: 'ignore' });
        if (r.status === 0) {
          ready = true;
          break;
        }
        if (Number(process.hrtime.bigint() - t0) / 1e9 > 900) break;
        await new Promise((res) => setTimeout(res, 1000));
      }
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      killPidFile(join(h, 'qemu.pid'));
      // a baseline that never got ready is no baseline: fail instead of reporting its time-out
      if (!ready) throw new Error(`the by-hand baseline never got ready within 900 s (its console: ${join(h, 'serial.log')})`);
      handReady.push(ms);
    }
    report(`time to ready under TCG (${readyRuns} run(s) each)`, [
      { name: 'by hand, polling ssh every second', medianMs: median(handReady) },
      { name: 'kumo launch (ssh + cloud-init of this instance)', medianMs: median(kumoReady), baseline: 'by hand', ratio: median(kumoReady) / median(handReady) },
    ]);
  }

  // 2. kumo list with 200 instances
  kumo('create', imageRef, '--name', 'l-0');
  const src = join(home, 'instances', 'l-0');
  const rec = JSON.parse(await readFile(join(src, 'instance.json'), 'utf8'));
  for (let i = 1; i < 200; i++) {
    const d = join(home, 'instances', `l-${i}`);
    await cp(src, d, { recursive: true });
    await writeFile(join(d, 'instance.json'), JSON.stringify({ ...rec, name: `l-${i}` }, null, 2));
  }
  const n = JSON.parse(kumo('list', '--json')).length;
  const listT = timeCommand([process.execPath, bin, 'list', '--json'], RUNS, env);
  const catT = timeCommand(['find', join(home, 'instances'), '-name', 'instance.json', '-exec', 'cat', '{}', '+'], RUNS);
  const verT = timeCommand([process.execPath, bin, '--version'], RUNS, env);
  report(`kumo list with ${n} stopped instances (${RUNS} runs each)`, [
    { name: 'find -exec cat of the 200 instance.json', medianMs: median(catT) },
    { name: 'kumo --version (node start-up floor)', medianMs: median(verT) },
    { name: 'kumo list --json', medianMs: median(listT), baseline: 'kumo --version', ratio: median(listT) / median(verT), note: `${((median(listT) - median(verT)) / n).toFixed(2)} ms per instance above start-up` },
  ]);
} finally {
  // kill, by pid, any QEMU this bench started (their argv names the temp folder)
  for (const line of execFileSync('ps', ['-eo', 'pid=,args=']).toString().split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && m[2]!.includes('qemu-system') && m[2]!.includes(dir)) {
      try {
        process.kill(Number(m[1]), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  await rm(dir, { recursive: true, force: true });
}
