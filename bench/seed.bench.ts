/**
 * Seed creation: kumo (library call and the `kumo seed create` command) vs cloud-localds
 * (Debian's cloud-image-utils, which runs genisoimage), same user-data and meta-data, same run.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeSeed, writeIso } from '../src/seed/index.js';
import { median, report, timeAsync, timeCommand } from './lib.js';

const N = 20;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1hZGUgdXAga2V5IGZvciB0ZXN0cyBvbmx5IQ== bench@host';
const bin = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'kumo.js');

const dir = await mkdtemp(join(tmpdir(), 'kumo-bench-seed-'));
try {
  const userData = '#cloud-config\npackages: [git, curl]\nruncmd:\n  - echo hello\n';
  await writeFile(join(dir, 'user-data'), userData);
  await writeFile(join(dir, 'meta-data'), 'instance-id: i-bench\nlocal-hostname: bench\n');
  await writeFile(join(dir, 'id.pub'), KEY + '\n');
  let i = 0;
  const lib = await timeAsync(() => writeSeed({ instanceId: `i-${i}`, hostname: 'bench', sshAuthorizedKeys: [KEY], userData }, join(dir, `lib-${i++}.iso`)), N);
  let j = 0;
  const raw = await timeAsync(
    () => writeIso([{ path: 'user-data', data: userData }, { path: 'meta-data', data: 'instance-id: i\n' }], join(dir, `raw-${j++}.iso`), { volumeId: 'cidata' }),
    N,
  );
  const cli = timeCommand([process.execPath, bin, 'seed', 'create', '-o', join(dir, 'cli.iso'), '--user-data', join(dir, 'user-data'), '--meta-data', join(dir, 'meta-data'), '--ssh-key', join(dir, 'id.pub')], N);
  const haveLocalds = spawnSync('sh', ['-c', 'command -v cloud-localds'], { stdio: 'ignore' }).status === 0;
  const rows = [];
  if (haveLocalds) {
    const localds = timeCommand(['cloud-localds', join(dir, 'localds.iso'), join(dir, 'user-data'), join(dir, 'meta-data')], N);
    const base = median(localds);
    rows.push({ name: 'cloud-localds (genisoimage)', medianMs: base });
    rows.push({ name: 'kumo seed create (whole command, new process)', medianMs: median(cli), baseline: 'cloud-localds', ratio: median(cli) / base });
    rows.push({ name: 'writeSeed (library: compose + ISO + fsync)', medianMs: median(lib), baseline: 'cloud-localds', ratio: median(lib) / base });
    rows.push({ name: 'writeIso (library: ISO only + fsync)', medianMs: median(raw), baseline: 'cloud-localds', ratio: median(raw) / base });
  } else {
    rows.push({ name: 'kumo seed create', medianMs: median(cli), note: 'cloud-localds missing: no baseline' });
    rows.push({ name: 'writeSeed (library)', medianMs: median(lib) });
  }
  // The ISOs timed above must be real seeds: read each back with an independent reader (isoinfo)
  // and check its volume label and files. A bench that timed broken output would mean nothing.
  const read = (iso: string, file: string) => {
    const r = spawnSync('isoinfo', ['-R', '-i', iso, '-x', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`isoinfo cannot read ${file} from ${iso}: ${r.stderr}`);
    return r.stdout;
  };
  const label = (iso: string) => /Volume id:\s*(\S+)/.exec(spawnSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' }).stdout)?.[1];
  const checks: [string, string, (ud: string, md: string) => boolean][] = [
    ['cli.iso', 'kumo seed create', (ud, md) => ud.includes('echo hello') && ud.includes(KEY) && md.includes('instance-id: i-bench')],
    [`lib-${N - 1}.iso`, 'writeSeed', (ud, md) => ud.includes('echo hello') && ud.includes(KEY) && md.includes(`i-${N - 1}`)],
    [`raw-${N - 1}.iso`, 'writeIso', (ud, md) => ud === userData && md === 'instance-id: i\n'],
    ...(haveLocalds ? [['localds.iso', 'cloud-localds', (ud: string) => ud === userData] as [string, string, (ud: string, md: string) => boolean]] : []),
  ];
  for (const [iso, what, ok] of checks) {
    const p = join(dir, iso);
    if (label(p) !== 'cidata') throw new Error(`${what} wrote ${iso} without the volume label cidata (found ${label(p)})`);
    if (!ok(read(p, '/user-data'), read(p, '/meta-data'))) throw new Error(`${what} wrote ${iso} whose user-data or meta-data is not what was asked for`);
  }
  report(`seed creation, ${N} runs each (ratio < 1: kumo is faster; every ISO read back with isoinfo)`, rows);
} finally {
  await rm(dir, { recursive: true, force: true });
}
