/**
 * Shared folders bench (one TCG boot; not part of CI).
 *   node dist/bench/mounts.bench.js [--runs N] [--mount-type virtiofs|9p]
 *
 * One instance with one shared folder (virtiofs by default). In one run, each measured `runs`
 * times (medians), for a 200 MiB file and a tree of 5,000 small files (1 KiB, 50 folders):
 *   - write: the guest writes into the shared folder  vs  the guest writes to its own disk
 *            vs  `kumo cp` from the host into the guest (scp);
 *   - read:  the guest reads from the shared folder (guest page cache dropped)  vs  the guest
 *            reads its own disk (cache dropped)  vs  `kumo cp` from the guest to the host.
 * Times are wall clock from the host (a command in the guest over the shared ssh connection,
 * whose own cost is measured as `exec true` and printed); ratios are each row's median over the
 * guest's own disk. Numbers are printed, never asserted.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getInstance } from '../src/index.js';
import { testImagePath } from '../test/helpers/test-image.js';
import { median, report, timeAsync, type Row } from './lib.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1]) || 3;
const mountType = args.includes('--mount-type') ? args[args.indexOf('--mount-type') + 1]! : 'auto';
const FILE_MIB = 200;
const TREE_FILES = 5000;
const bin = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'kumo.js');

function kumo(home: string, argv: string[]): void {
  const r = spawnSync(process.execPath, [bin, ...argv], { env: { ...process.env, KUMO_HOME: home }, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`kumo ${argv.join(' ')}: exit ${r.status}: ${r.stderr.toString().slice(-2000)}`);
}

async function main(): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'kumo-bench-mounts-home-'));
  const work = await mkdtemp(join(tmpdir(), 'kumo-bench-mounts-'));
  const share = join(work, 'share');
  const name = `bench-${randomBytes(2).toString('hex')}`;
  await mkdir(share);
  spawnSync('chown', ['1000:1000', share]);
  // the host's copies for kumo cp: one big file, one tree
  const hostFile = join(work, 'big.bin');
  spawnSync('dd', ['if=/dev/urandom', `of=${hostFile}`, 'bs=1M', `count=${FILE_MIB}`, 'status=none']);
  const hostTree = join(work, 'tree');
  for (let d = 0; d < 50; d++) {
    await mkdir(join(hostTree, `d${d}`), { recursive: true });
    for (let f = 0; f < TREE_FILES / 50; f++) await writeFile(join(hostTree, `d${d}`, `f${f}`), randomBytes(1024));
  }
  try {
    const t0 = Date.now();
    kumo(home, ['launch', testImagePath(), '--name', name, '--cpus', '2', '--memory', '1G', '--mount', `${share}:/share`, '--mount-type', mountType, '--timeout', '1800']);
    console.log(`booted in ${Math.round((Date.now() - t0) / 1000)} s`);
    const vm = await getInstance(name, { home });
    const rec = await vm.record();
    console.log(`mount: ${rec.mounts?.map((m) => `${m.host} -> ${m.guest} (${m.type})`).join(', ')}`);
    const g = async (cmd: string) => {
      const r = await vm.exec(['bash', '-c', cmd]);
      if (r.code !== 0) throw new Error(`guest: ${cmd}: exit ${r.code}: ${r.stderr}`);
    };
    await g('sudo mkdir -p /var/tmp/disk && sudo chown kumo: /var/tmp/disk');
    const drop = 'sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null';
    const execOverhead = median(await timeAsync(() => g('true'), runs));
    // the guest writes the big file and the tree (tar of the tree made once in the guest's tmpfs-free disk)
    await g(`head -c ${1024 * TREE_FILES} /dev/urandom > /var/tmp/blob && mkdir -p /var/tmp/src && cd /var/tmp/src && for d in $(seq 0 49); do mkdir -p d$d; for f in $(seq 0 ${TREE_FILES / 50 - 1}); do head -c 1024 /dev/urandom > d$d/f$f; done; done`);
    const writeBig = (dir: string) => timeAsync(() => g(`rm -f ${dir}/big.bin; dd if=/dev/zero of=${dir}/big.bin bs=1M count=${FILE_MIB} conv=fsync status=none`), runs);
    const writeTree = (dir: string) => timeAsync(() => g(`rm -rf ${dir}/tree; cp -r /var/tmp/src ${dir}/tree && sync`), runs);
    const readBig = (dir: string) => timeAsync(() => g(`${drop}; cat ${dir}/big.bin > /dev/null`), runs);
    const readTree = (dir: string) => timeAsync(() => g(`${drop}; tar cf - -C ${dir} tree | wc -c > /dev/null`), runs);
    const rows: Row[] = [];
    const add = (title: string, base: number, entries: [string, number[]][]) => {
      for (const [n, xs] of entries) {
        const m = median(xs);
        rows.push({ name: `${title}: ${n}`, medianMs: m, ...(n === 'guest disk' ? {} : { baseline: 'guest disk', ratio: m / base }) });
      }
    };
    const wbDisk = await writeBig('/var/tmp/disk');
    const wbMount = await writeBig('/share');
    const wbCp = await timeAsync(async () => kumo(home, ['cp', hostFile, `${name}:/var/tmp/disk/cp-big.bin`]), runs);
    add(`write ${FILE_MIB} MiB file`, median(wbDisk), [['guest disk', wbDisk], ['shared folder', wbMount], ['kumo cp host->guest', wbCp]]);
    const rbDisk = await readBig('/var/tmp/disk');
    const rbMount = await readBig('/share');
    const rbCp = await timeAsync(async () => kumo(home, ['cp', `${name}:/var/tmp/disk/big.bin`, join(work, 'back.bin')]), runs);
    add(`read ${FILE_MIB} MiB file`, median(rbDisk), [['guest disk', rbDisk], ['shared folder', rbMount], ['kumo cp guest->host', rbCp]]);
    const wtDisk = await writeTree('/var/tmp/disk');
    const wtMount = await writeTree('/share');
    const wtCp = await timeAsync(async () => {
      await g('rm -rf /var/tmp/disk/cp-tree');
      kumo(home, ['cp', hostTree, `${name}:/var/tmp/disk/cp-tree`]);
    }, runs);
    add(`write ${TREE_FILES} files`, median(wtDisk), [['guest disk', wtDisk], ['shared folder', wtMount], ['kumo cp host->guest', wtCp]]);
    const rtDisk = await readTree('/var/tmp/disk');
    const rtMount = await readTree('/share');
    const rtCp = await timeAsync(async () => {
      await rm(join(work, 'back-tree'), { recursive: true, force: true });
      kumo(home, ['cp', `${name}:/var/tmp/disk/tree`, join(work, 'back-tree')]);
    }, runs);
    add(`read ${TREE_FILES} files`, median(rtDisk), [['guest disk', rtDisk], ['shared folder', rtMount], ['kumo cp guest->host', rtCp]]);
    report(`shared folder (${rec.mounts?.[0]?.type}) vs kumo cp vs the guest's disk, ${runs} runs each, TCG (exec overhead ${execOverhead.toFixed(0)} ms, included)`, rows);
  } finally {
    spawnSync(process.execPath, [bin, 'delete', '--force', name], { env: { ...process.env, KUMO_HOME: home }, stdio: 'ignore' });
    await rm(home, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

await main();
