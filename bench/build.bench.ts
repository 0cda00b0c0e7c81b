/**
 * Image builder bench (long: several builds and TCG boots; not part of CI).
 *   node dist/bench/build.bench.js [--runs N] [--skip-dib] [--skip-boot]
 *
 * Build times are taken from outside: `kumo image build` run as a process (wall clock from spawn
 * to exit, several runs, medians), never the builder's own report. Every ratio is the row's
 * median over its baseline's (below 1: the row is faster).
 *
 * 1. Build time, cold (no caches) and warm (bootstrap and packages cached), and image size, of
 *    kumo's default Debian 12 image, beside diskimage-builder run in the same session:
 *    `disk-image-create -t tar vm debian-minimal` (DIB_RELEASE=bookworm). DIB cannot make a disk
 *    image on this machine (it fails at kpartx: no device-mapper), so only its tree-building part
 *    (-t tar) is compared, and that is said in the output.
 * 2. Boot to ssh under TCG of the tuned image against an "untuned" build of the same packages
 *    (no fast-boot element; cloud-init's default datasource list and modules; MODULES=most
 *    initramfs; GRUB timeout 5; all host key types).
 */
import { mkdtemp, mkdir, writeFile, rm, stat } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage } from '../src/builder/index.js';
import { bootImage } from '../test/fixtures/boot.js';
import { testCacheDir } from '../test/helpers/test-image.js';
import { median, report, type Row } from './lib.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 3;
const skipDib = args.includes('--skip-dib');
const skipBoot = args.includes('--skip-boot');
const MiB = 1024 * 1024;

const UNTUNE_PRE = `#!/bin/bash
# after vm's 10-initramfs-config: Debian's default initramfs
sed -i 's/^MODULES=.*/MODULES=most/' /etc/initramfs-tools/conf.d/90-kumo.conf
`;
const UNTUNE_INSTALL = `#!/bin/bash
# undo the cloud-init and ssh tuning of the kumo elements
rm -f /etc/cloud/cloud.cfg.d/90-kumo-datasources.cfg /etc/cloud/cloud.cfg.d/92-kumo-ssh.cfg
`;

async function untunedElements(dir: string): Promise<string> {
  const e = join(dir, 'elements');
  await mkdir(join(e, 'untune', 'pre-install.d'), { recursive: true });
  await mkdir(join(e, 'untune', 'post-install.d'), { recursive: true });
  await mkdir(join(e, 'untune', 'environment.d'), { recursive: true });
  await writeFile(join(e, 'untune', 'pre-install.d', '11-untune-initramfs'), UNTUNE_PRE, { mode: 0o755 });
  await writeFile(join(e, 'untune', 'post-install.d', '90-untune'), UNTUNE_INSTALL, { mode: 0o755 });
  await writeFile(join(e, 'untune', 'environment.d', '90-untune'), 'export KUMO_GRUB_TIMEOUT=5\n');
  return e;
}

const bin = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'kumo.js');

/** `kumo image build --output OUT` as a process in KUMO_HOME `home`, timed from outside (ms). */
function timedBuild(home: string, out: string, extra: string[] = []): { ms: number; size: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, '--home', home, 'image', 'build', '--output', out, ...extra], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`kumo image build failed (${r.status}): ${r.stderr.toString().trim().split('\n').slice(-6).join('\n')}`);
  return { ms, size: statSync(out).size };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-build-bench-'));
  const cache = join(testCacheDir(), 'bench-build');
  const rows: Row[] = [];
  try {
    // --- build times
    const cold: number[] = [];
    const warm: number[] = [];
    let size = 0;
    for (let i = 0; i < runs; i++) {
      console.error(`kumo cold build ${i + 1}/${runs}...`);
      const home = join(dir, `cold-home-${i}`);
      const r = timedBuild(home, join(dir, `cold-${i}.qcow2`), ['--no-cache']);
      cold.push(r.ms);
      size = r.size;
      await rm(home, { recursive: true, force: true });
      await rm(join(dir, `cold-${i}.qcow2`), { force: true });
    }
    console.error('filling the build cache...');
    const warmHome = join(dir, 'warm-home');
    timedBuild(warmHome, join(dir, 'prime.qcow2')); // fill the cache
    await rm(join(dir, 'prime.qcow2'), { force: true });
    for (let i = 0; i < runs; i++) {
      console.error(`kumo warm build ${i + 1}/${runs}...`);
      warm.push(timedBuild(warmHome, join(dir, `warm-${i}.qcow2`)).ms);
      await rm(join(dir, `warm-${i}.qcow2`), { force: true });
    }
    let dibCold: number | undefined;
    let dibWarm: number | undefined;
    let dibSize: number | undefined;
    const dib = spawnSync('which', ['disk-image-create']).status === 0;
    if (!skipDib && dib) {
      const env = {
        ...process.env,
        DIB_RELEASE: 'bookworm',
        DIB_APT_SOURCES_CONF: 'default:deb http://deb.debian.org/debian bookworm main\nupdates:deb http://deb.debian.org/debian bookworm-updates main\nsecurity:deb http://deb.debian.org/debian-security bookworm-security main',
        ELEMENTS_PATH: '',
        DIB_IMAGE_CACHE: join(dir, 'dib-cache'),
      };
      for (const [label, keepCache] of [['cold', false], ['warm', true]] as const) {
        console.error(`diskimage-builder ${label} (-t tar)...`);
        if (!keepCache) await rm(join(dir, 'dib-cache'), { recursive: true, force: true });
        const t0 = Date.now();
        const r = spawnSync('disk-image-create', ['-t', 'tar', '-o', join(dir, `dib-${label}`), 'vm', 'debian-minimal'], { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
        const ms = Date.now() - t0;
        const outText = r.stdout.toString() + r.stderr.toString();
        // With the vm element DIB creates the disk even for -t tar and fails at kpartx (no
        // device-mapper here); by then the tree is complete, so the time until then is its tree build.
        const treeDone = r.status !== 0 && /kpartx/.test(outText) && /Calculating image size/.test(outText);
        if (r.status !== 0 && !treeDone) {
          console.log(`diskimage-builder (${label}) failed: ${(r.stdout.toString() + r.stderr.toString()).trim().split('\n').slice(-8).join('\n')}`);
          break;
        }
        if (label === 'cold') dibCold = ms;
        else dibWarm = ms;
        if (!treeDone) dibSize = (await stat(join(dir, `dib-${label}.tar`))).size;
      }
    }
    rows.push({ name: 'kumo build, cold (no caches)', medianMs: median(cold), note: `qcow2 ${(size / MiB).toFixed(0)} MiB` });
    rows.push({ name: 'kumo build, warm (bootstrap + packages cached)', medianMs: median(warm), baseline: 'kumo cold', ratio: median(warm) / median(cold) });
    if (dibCold !== undefined)
      rows.push({ name: 'diskimage-builder -t tar, cold (tree only)', medianMs: dibCold, baseline: 'kumo cold (whole disk)', ratio: dibCold / median(cold), note: dibSize !== undefined ? `tar ${(dibSize / MiB).toFixed(0)} MiB` : 'until it fails at kpartx, tree built' });
    if (dibWarm !== undefined) rows.push({ name: 'diskimage-builder -t tar, warm (tree only)', medianMs: dibWarm, baseline: 'kumo warm (whole disk)', ratio: dibWarm / median(warm) });
    if (!dib && !skipDib) console.log('diskimage-builder is not installed (apt-get install python3-diskimage-builder sudo): no baseline for build time');
    report(`image build, ${runs} run(s) each, timed as processes (ratio = row / baseline; diskimage-builder cannot make a disk here: only its -t tar tree build is compared)`, rows);

    // --- boot to ssh
    if (!skipBoot) {
      const tuned = await buildImage({ output: join(dir, 'tuned.qcow2'), cacheDir: cache });
      const els = await untunedElements(dir);
      const untuned = await buildImage({
        output: join(dir, 'untuned.qcow2'),
        cacheDir: cache,
        elements: ['vm', 'cloud-init', 'openssh-server', 'growroot', 'sysprep', 'untune'],
        elementsPath: [els],
      });
      const t: number[] = [];
      const u: number[] = [];
      for (let i = 0; i < Math.max(runs, 1); i++) {
        for (const [img, acc] of [[untuned.path, u], [tuned.path, t]] as const) {
          console.error(`booting ${img}...`);
          const vm = await bootImage({ image: img, sshTimeoutMs: 600_000 });
          acc.push(vm.sshSeconds * 1000);
          await vm.stop();
        }
      }
      report('boot to ssh under TCG (q35, 2 vCPU, 1 GiB)', [
        { name: 'untuned debootstrap of the same packages', medianMs: median(u) },
        { name: 'kumo tuned image', medianMs: median(t), baseline: 'untuned', ratio: median(t) / median(u) },
      ]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    if (existsSync(join(cache, 'work'))) await rm(join(cache, 'work'), { recursive: true, force: true });
  }
}

await main();
