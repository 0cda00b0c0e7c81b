/**
 * Spawning 5 instances from a golden image, host side only (no boot): time per spawn and disk
 * used per instance before boot (aim: under 2 MiB each), for
 *   - kumo create from the golden image (overlay + seed + host key + record),
 *   - kumo clone of a stopped instance (a copy of its overlay + a new identity),
 * against, in the same run,
 *   - the same steps by hand, as testcloud does: qemu-img create -b + cloud-localds,
 *   - a full copy of the image per instance (cp), the naive way.
 * The golden image is the built test image when it exists (node dist/test/fixtures/test-image.js),
 * else a synthetic 1 GiB qcow2 holding 256 MiB of data.
 */
import { mkdtemp, rm, readdir, stat, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureHome } from '../src/config/paths.js';
import { importImage } from '../src/image/index.js';
import { createInstance } from '../src/instance/index.js';
import { cloneInstance } from '../src/instance/index.js';
import { testImagePath } from '../test/helpers/test-image.js';
import { median, report } from './lib.js';

const N = 5;
const MiB = 1024 * 1024;

function must(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** Bytes really used on disk by a file or a folder (allocated blocks). */
async function used(p: string): Promise<number> {
  const s = await stat(p);
  if (!s.isDirectory()) return s.blocks * 512;
  let n = s.blocks * 512;
  for (const f of await readdir(p)) n += await used(join(p, f));
  return n;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const root = await mkdtemp(join(tmpdir(), 'kumo-bench-golden-'));
try {
  const paths = await ensureHome({ home: join(root, 'home') });
  let src: string;
  let label: string;
  try {
    src = testImagePath();
    label = 'the built test image';
  } catch {
    src = join(root, 'synthetic.qcow2');
    must('qemu-img', ['create', '-q', '-f', 'qcow2', src, '1G']);
    must('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 0 ${256 * MiB}`, src]);
    label = 'a synthetic 1 GiB qcow2 (test image not built)';
  }
  const golden = await importImage(paths, src, { name: 'golden' });
  console.log(`golden image: ${label}, ${(golden.size / MiB).toFixed(0)} MiB`);

  // kumo create from the golden image
  const create: number[] = [];
  const createUse: number[] = [];
  for (let i = 0; i < N; i++) {
    create.push(await timed(() => createInstance(paths, { name: `g${i}`, image: 'golden', accel: 'tcg' })));
    createUse.push(await used(join(paths.instances, `g${i}`)));
  }
  // kumo clone of a stopped instance
  const clone: number[] = [];
  const cloneUse: number[] = [];
  for (let i = 0; i < N; i++) {
    clone.push(await timed(() => cloneInstance(paths, 'g0', `c${i}`)));
    cloneUse.push(await used(join(paths.instances, `c${i}`)));
  }
  // by hand, as testcloud does
  const hand: number[] = [];
  const handUse: number[] = [];
  for (let i = 0; i < N; i++) {
    const d = join(root, 'hand', `h${i}`);
    await mkdir(d, { recursive: true });
    hand.push(
      await timed(async () => {
        must('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', golden.path, join(d, 'disk.qcow2')]);
        await writeFile(join(d, 'user-data'), '#cloud-config\nusers: [default]\n');
        await writeFile(join(d, 'meta-data'), `instance-id: h${i}\nlocal-hostname: h${i}\n`);
        must('cloud-localds', [join(d, 'seed.iso'), join(d, 'user-data'), join(d, 'meta-data')]);
      }),
    );
    handUse.push(await used(d));
  }
  // a full copy per instance
  const copy: number[] = [];
  const copyUse: number[] = [];
  for (let i = 0; i < 2; i++) {
    const f = join(root, `copy${i}.qcow2`);
    copy.push(await timed(() => copyFile(golden.path, f)));
    copyUse.push(await used(f));
    await rm(f);
  }

  const c = median(create);
  const h = median(hand);
  report(`Spawning ${N} instances from a golden image (host side, no boot)`, [
    { name: 'by hand: qemu-img create -b + cloud-localds', medianMs: h, note: `disk used ${(median(handUse) / MiB).toFixed(2)} MiB each` },
    { name: 'full copy of the image (cp)', medianMs: median(copy), baseline: 'by hand', ratio: median(copy) / h, note: `disk used ${(median(copyUse) / MiB).toFixed(1)} MiB each` },
    { name: 'kumo create from the golden image', medianMs: c, baseline: 'by hand', ratio: c / h, note: `disk used ${(median(createUse) / MiB).toFixed(2)} MiB each (max ${(Math.max(...createUse) / MiB).toFixed(2)}); aim < 2 MiB` },
    { name: 'kumo clone of a stopped instance', medianMs: median(clone), baseline: 'by hand', ratio: median(clone) / h, note: `disk used ${(median(cloneUse) / MiB).toFixed(2)} MiB each` },
  ]);
} finally {
  await rm(root, { recursive: true, force: true });
}
