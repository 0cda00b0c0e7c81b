/**
 * Warm clones against cold launches of the same image and shape, in one run.
 *   node dist/bench/warm.bench.js [--clones N] [--cold N] [--memory-vms N]
 *
 * 1. Time to ready (library launch, measured from outside the library: the call's wall clock):
 *    N clones of a warm template, one after another, against cold launches (`cold: true`) of the
 *    same image and shape. A clone's time is split into QEMU start, restore, identity steps and
 *    sshd answering (from the start result). Then the time to the first exec after ready (it pays
 *    the guest's ssh handshake).
 * 2. Memory: N running clones against N running cold-booted instances, sum of the PSS of their
 *    QEMU processes (/proc/PID/smaps_rollup), each set measured after every member is ready.
 * 3. Disk per clone before its first start (the overlay, bytes on disk).
 * Goals (issue 19, TCG on this machine): ready <= 1.5 s median and <= 0.05 of cold; first exec
 * <= 1.5 s; clones' PSS <= 0.5 of cold; disk per clone < 2 MiB. Printed, not asserted.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, type Instance } from '../src/index.js';
import { ensureHome } from '../src/config/paths.js';
import { createFromTemplate, deleteInstance, instanceFiles, resolveImage, validateSpec, warmTemplate } from '../src/instance/index.js';
import { median, report } from './lib.js';
import { testImageCachedPath } from '../test/helpers/test-image.js';

const args = process.argv.slice(2);
const num = (flag: string, d: number) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) || d : d);
const CLONES = num('--clones', 5);
const COLD = num('--cold', 2);
const MEMVMS = num('--memory-vms', 5);
const shape = { cpus: 1, memory: '1G' } as const;

async function pss(vm: Instance): Promise<number> {
  const pid = (await vm.status()).pid;
  if (!pid) throw new Error(`${vm.name} has no pid`);
  const t = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  return Number(/^Pss:\s+(\d+) kB/m.exec(t)?.[1] ?? NaN) * 1024;
}

const dir = await mkdtemp(join(tmpdir(), 'kumo-bench-warm-'));
const home = join(dir, 'home');
const image = testImageCachedPath();
try {
  const paths = await ensureHome({ home });
  const t0 = Date.now();
  const w = await warmTemplate(paths, { image, ...shape, timeout: 3600 });
  console.log(`template ${w.template.id} made in ${((Date.now() - t0) / 1000).toFixed(1)} s (boot ${(w.template.timings.bootMs / 1000).toFixed(1)} s, save ${w.template.timings.saveMs} ms); state ${w.template.sizes.stateBytes} bytes, RAM file ${w.template.sizes.memoryOnDiskBytes} bytes on disk`);

  // 3. disk per clone before boot
  const probe = await createFromTemplate(paths, validateSpec({ image, ...shape, name: 'disk-probe' }), w.template, await resolveImage(paths, image));
  const diskBytes = (await stat(instanceFiles(paths, probe.name).disk)).blocks * 512;
  await deleteInstance(paths, probe.name);

  // 1. time to ready, and the first exec
  const warmReady: number[] = [];
  const parts: Record<string, number[]> = { start: [], restore: [], identity: [], ssh: [] };
  const firstExec: number[] = [];
  for (let i = 0; i < CLONES; i++) {
    const s = Date.now();
    const vm = await launch({ image, ...shape, name: `clone-${i}`, home });
    warmReady.push(Date.now() - s);
    const r = vm.started?.restored;
    if (!r) throw new Error(`clone-${i} was not restored from the template`);
    parts.start!.push(r.startMs);
    parts.restore!.push(r.restoreMs);
    parts.identity!.push(r.identityMs ?? 0);
    parts.ssh!.push(r.sshMs ?? 0);
    const e = Date.now();
    await vm.exec('true', { check: true });
    firstExec.push(Date.now() - e);
    await vm.delete();
  }
  const coldReady: number[] = [];
  for (let i = 0; i < COLD; i++) {
    const s = Date.now();
    const vm = await launch({ image, ...shape, name: `cold-${i}`, home, cold: true, timeout: 1800 });
    coldReady.push(Date.now() - s);
    if (vm.started?.restored) throw new Error('a cold launch was restored');
    await vm.delete();
  }
  const mw = median(warmReady);
  const mc = median(coldReady);
  report('time to ready: warm clone vs cold launch (same image, 1 cpu, 1 GiB)', [
    { name: `cold launch (n=${COLD})`, medianMs: mc },
    { name: `warm clone (n=${CLONES})`, medianMs: mw, baseline: 'cold', ratio: mw / mc },
    { name: '  QEMU start', medianMs: median(parts.start!) },
    { name: '  restore', medianMs: median(parts.restore!) },
    { name: '  identity (guest agent)', medianMs: median(parts.identity!) },
    { name: '  sshd answers', medianMs: median(parts.ssh!) },
    { name: 'first exec after ready (clone)', medianMs: median(firstExec) },
  ]);

  // 2. memory: N clones vs N cold instances, all running at once per set
  const sumPss = async (vms: Instance[]) => (await Promise.all(vms.map(pss))).reduce((a, b) => a + b, 0);
  const clonesUp = await Promise.all([...Array(MEMVMS).keys()].map((i) => launch({ image, ...shape, name: `mem-w-${i}`, home })));
  const pssWarm = await sumPss(clonesUp);
  for (const vm of clonesUp) await vm.delete();
  const coldUp: Instance[] = [];
  for (let i = 0; i < MEMVMS; i++) coldUp.push(await launch({ image, ...shape, name: `mem-c-${i}`, home, cold: true, timeout: 3600 }));
  const pssCold = await sumPss(coldUp);
  for (const vm of coldUp) await vm.delete();
  console.log(`\n## memory: ${MEMVMS} running clones vs ${MEMVMS} cold-booted instances, sum of QEMU PSS`);
  console.log(`cold  ${(pssCold / 1048576).toFixed(0)} MiB`);
  console.log(`warm  ${(pssWarm / 1048576).toFixed(0)} MiB  ratio ${(pssWarm / pssCold).toFixed(2)} vs cold`);
  console.log(`\n## disk per clone before its first start: ${(diskBytes / 1024).toFixed(0)} KiB`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
