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
  report(`seed creation, ${N} runs each (ratio < 1: kumo is faster)`, rows);
} finally {
  await rm(dir, { recursive: true, force: true });
}
