/**
 * Reading the backing chains of 1000 overlays: kumo's native reader vs `qemu-img info
 * --backing-chain`. qemu-img is sampled on SAMPLE overlays and its per-chain median is
 * extrapolated to 1000 (it costs a process per chain); kumo reads all 1000, in-process.
 * Also: `kumo disk info --json` as a process vs qemu-img, per chain, on the same sample.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backingChain } from '../src/disk/index.js';
import { median, report, timeAsync, timeCommand } from './lib.js';

const OVERLAYS = 1000;
const SAMPLE = 40;
const bin = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'kumo.js');

const dir = await mkdtemp(join(tmpdir(), 'kumo-bench-disk-'));
try {
  const qi = (...a: string[]) => execFileSync('qemu-img', a, { stdio: 'ignore' });
  qi('create', '-q', '-f', 'qcow2', join(dir, 'base.qcow2'), '10G');
  qi('create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', join(dir, 'golden.qcow2'));
  const t0 = Date.now();
  const overlays: string[] = [];
  for (let i = 0; i < OVERLAYS; i++) {
    const p = join(dir, `vm-${i}.qcow2`);
    qi('create', '-q', '-f', 'qcow2', '-b', 'golden.qcow2', '-F', 'qcow2', p);
    overlays.push(p);
  }
  console.log(`made ${OVERLAYS} overlays (3-link chains) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // kumo, all 1000 chains, 5 rounds
  const allKumo = await timeAsync(async () => {
    for (const p of overlays) {
      const c = await backingChain(p);
      if (c.length !== 3) throw new Error('bad chain');
    }
  }, 5);
  const perChainKumo = await timeAsync(() => backingChain(overlays[7]!), 200);

  // qemu-img, SAMPLE chains, one process each
  const sample = overlays.filter((_, i) => i % Math.floor(OVERLAYS / SAMPLE) === 0).slice(0, SAMPLE);
  const qemu: number[] = [];
  for (const p of sample) qemu.push(...timeCommand(['qemu-img', 'info', '--output=json', '--backing-chain', '-U', p], 1));
  const qemuPer = median(qemu);
  const cli: number[] = [];
  for (const p of sample.slice(0, 15)) cli.push(...timeCommand([process.execPath, bin, 'disk', 'info', '--json', p], 1));

  report(`backing chains of ${OVERLAYS} overlays (ratio < 1: kumo is faster)`, [
    { name: `qemu-img info --backing-chain x${OVERLAYS}`, medianMs: qemuPer * OVERLAYS, note: `extrapolated: median ${qemuPer.toFixed(1)} ms/chain over ${SAMPLE} runs` },
    { name: `kumo backingChain x${OVERLAYS} (in-process)`, medianMs: median(allKumo), baseline: 'qemu-img', ratio: median(allKumo) / (qemuPer * OVERLAYS), note: '5 rounds' },
    { name: 'qemu-img info --backing-chain, one chain', medianMs: qemuPer },
    { name: 'kumo backingChain, one chain', medianMs: median(perChainKumo), baseline: 'qemu-img', ratio: median(perChainKumo) / qemuPer },
    { name: 'kumo disk info --json, one chain (new process)', medianMs: median(cli), baseline: 'qemu-img', ratio: median(cli) / qemuPer, note: `${cli.length} runs` },
  ]);
} finally {
  await rm(dir, { recursive: true, force: true });
}
