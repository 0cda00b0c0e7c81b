/**
 * Download + verify of a 1 GiB image from a loopback HTTP server (another process), kumo's
 * ensureImage (stream to the cache, sha256 while streaming, verify, rename into the store)
 * against `curl URL | sha256sum` in the same run. The file is generated in a temp dir and deleted.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, report } from './lib.js';
import { pathsFor } from '../src/config/paths.js';
import { ensurePrivateDir } from '../src/core/fs.js';
import { ensureImage } from '../src/image/index.js';

const SIZE = Number(process.env.KUMO_BENCH_IMAGE_MIB ?? 1024) * 1024 * 1024;
const RUNS = Number(process.env.KUMO_BENCH_RUNS ?? 3);

async function generate(file: string): Promise<string> {
  const block = randomBytes(16 * 1024 * 1024);
  const h = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    for (let off = 0; off < SIZE; off += block.length) {
      const b = block.subarray(0, Math.min(block.length, SIZE - off));
      b.writeUInt32LE(off / block.length, 0); // no two blocks alike
      h.update(b);
      await fh.write(b);
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

function startServer(root: string): Promise<{ port: number; stop: () => void }> {
  const script = fileURLToPath(new URL('../test/helpers/http-server.js', import.meta.url));
  const child = spawn(process.execPath, [script, root], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => {
      const m = /PORT (\d+)/.exec(d.toString());
      if (!m) return reject(new Error(`server said ${d}`));
      resolve({ port: Number(m[1]), stop: () => child.kill('SIGTERM') });
    });
    child.once('error', reject);
  });
}

function curlSha(url: string): Promise<{ ms: number; hex: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const curl = spawn('curl', ['-sS', '-o', '-', url], { stdio: ['ignore', 'pipe', 'inherit'] });
    const sum = spawn('sha256sum', [], { stdio: [curl.stdout, 'pipe', 'inherit'] });
    let out = '';
    sum.stdout.on('data', (d) => (out += d));
    sum.on('error', reject);
    sum.on('close', (code) => {
      if (code !== 0) return reject(new Error(`sha256sum exited ${code}`));
      resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, hex: out.split(' ')[0]! });
    });
  });
}

/** The same work kumo does: download, hash, and keep the file durably (curl | tee FILE | sha256sum; sync FILE). */
function curlTeeSha(url: string, file: string): Promise<{ ms: number; hex: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const curl = spawn('curl', ['-sS', '-o', '-', url], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tee = spawn('tee', [file], { stdio: [curl.stdout, 'pipe', 'inherit'] });
    const sum = spawn('sha256sum', [], { stdio: [tee.stdout, 'pipe', 'inherit'] });
    let out = '';
    sum.stdout.on('data', (d) => (out += d));
    sum.on('error', reject);
    sum.on('close', (code) => {
      if (code !== 0) return reject(new Error(`sha256sum exited ${code}`));
      const s = spawn('sync', [file], { stdio: 'inherit' });
      s.on('close', () => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, hex: out.split(' ')[0]! }));
    });
  });
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-bench-image-'));
  let server: { port: number; stop: () => void } | undefined;
  try {
    const file = join(dir, 'srv', 'image.raw');
    await ensurePrivateDir(join(dir, 'srv'));
    const digest = await generate(file);
    server = await startServer(join(dir, 'srv'));
    const url = `http://127.0.0.1:${server.port}/image.raw`;
    const base: number[] = [];
    const tee: number[] = [];
    const ours: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const c = await curlSha(url);
      if (c.hex !== digest) throw new Error('curl | sha256sum got other bytes');
      base.push(c.ms);
      const t = await curlTeeSha(url, join(dir, 'tee.out'));
      if (t.hex !== digest) throw new Error('curl | tee | sha256sum got other bytes');
      tee.push(t.ms);
      await rm(join(dir, 'tee.out'));
      const home = join(dir, `home-${i}`);
      const paths = pathsFor(home);
      for (const d of [paths.home, paths.images, paths.instances, paths.cache, paths.tmp]) await ensurePrivateDir(d);
      const t0 = process.hrtime.bigint();
      const rec = await ensureImage(paths, url, { checksum: `sha256:${digest}` });
      ours.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (rec.id !== digest) throw new Error('kumo stored other bytes');
      // and the stored file itself, read back by an independent hasher (not kumo's own digest)
      const stored = spawnSync('sha256sum', [rec.path], { encoding: 'utf8' });
      if (stored.status !== 0 || stored.stdout.split(' ')[0] !== digest) throw new Error(`the stored file ${rec.path} does not hash to the served bytes: ${stored.stdout}${stored.stderr}`);
      await rm(home, { recursive: true, force: true });
    }
    const mib = SIZE / 1024 / 1024;
    const mb = median(base);
    const mk = median(ours);
    const mt = median(tee);
    report(`download + verify ${mib} MiB over loopback (${RUNS} runs)`, [
      { name: 'curl | sha256sum (baseline)', medianMs: mb, note: `${((mib * 1000) / mb).toFixed(0)} MiB/s` },
      { name: 'curl | tee FILE | sha256sum; sync FILE', medianMs: mt, note: `${((mib * 1000) / mt).toFixed(0)} MiB/s (same work as kumo: the bytes are kept on disk)` },
      { name: 'kumo ensureImage (download, sha256, store)', medianMs: mk, baseline: 'curl | sha256sum', ratio: mk / mb, note: `${((mib * 1000) / mk).toFixed(0)} MiB/s, throughput ${(mb / mk).toFixed(2)} of curl|sha256sum, ${(mt / mk).toFixed(2)} of curl|tee|sha256sum+sync` },
    ]);
  } finally {
    server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
