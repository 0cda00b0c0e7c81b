/**
 * Ctrl-C (SIGINT) of real kumo processes in the middle of their work: `launch` while it waits for
 * a guest that never gets ready (QEMU on a blank disk), `create` and `image pull` while they
 * download from a slow local server, `capture` while its sealing copy boots. Each exits 130,
 * leaves no half-made instance, no image in the store, no lock held and no QEMU running.
 * The moment to interrupt is read from the --json event stream (stderr), never from a sleep.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo, KUMO_BIN } from '../../helpers/cli.js';
import { sha256, startServer, sumsFile, type TestServer } from '../../helpers/http-server.js';

const DEB = '/debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2';
let dir = '';
let home = '';
let blank = '';
let server: TestServer;
let image: Buffer;
const env = { KUMO_ACCEL: 'tcg', KUMO_RETRY_BACKOFF_MS: '20' };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-signals-'));
  home = join(dir, 'home');
  blank = join(dir, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', blank, '16M']);
  // An image with content (so that its qcow2 file has some size to download slowly).
  const raw = join(dir, 'img.raw');
  const buf = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < buf.length; i += 4096) buf.write(`block ${i} `.repeat(50), i);
  await writeFile(raw, buf);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, join(dir, 'img.qcow2')]);
  image = readFileSync(join(dir, 'img.qcow2'));
  server = await startServer();
  server.put(DEB, image);
  server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': image }, 'sha512'));
  await kumo(['list'], { home, env }); // makes KUMO_HOME
  await writeFile(join(home, 'catalog.yaml'), `sources:\n  debian:\n    base: ${server.url}/debian\n`);
});

after(async () => {
  await server.close();
  const left = existsSync(join(home, 'instances')) ? readdirSync(join(home, 'instances')).filter((n) => !n.startsWith('.')) : [];
  if (left.length) await kumo(['delete', '--force', ...left], { home, env });
  await rm(dir, { recursive: true, force: true });
});

interface Ev {
  type: string;
  id?: string;
  state?: string;
  current?: number;
}

/** Run kumo with --json; SIGINT it at the first event `when` accepts; resolve with its exit code. */
function interruptAt(args: string[], when: (e: Ev) => boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; interrupted: boolean }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [KUMO_BIN, ...args, '--json'], { env: { ...process.env, ...env, KUMO_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    let interrupted = false;
    // With --json, the events stream on stderr as JSON lines.
    c.stdout.resume();
    c.stderr.on('data', (d) => {
      stderr += d;
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.startsWith('{"event"') || interrupted) continue;
        if (when((JSON.parse(line) as { event: Ev }).event)) {
          interrupted = true;
          c.kill('SIGINT');
        }
      }
    });
    const t = setTimeout(() => c.kill('SIGKILL'), 180_000);
    c.on('error', reject);
    c.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stderr, interrupted });
    });
  });
}

/** Processes whose command line names this test's KUMO_HOME (its QEMUs), zombies left out. */
function processesOfHome(): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (cmd.includes(home) && st[st.lastIndexOf(')') + 2] !== 'Z') out.push(`${p}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

const instances = () => (existsSync(join(home, 'instances')) ? readdirSync(join(home, 'instances')).filter((n) => !n.startsWith('.')) : []);
const storedImages = async () => JSON.parse((await kumo(['image', 'list', '--json'], { home, env })).stdout) as { id: string; name?: string; aliases: string[] }[];
/** Lock files left in KUMO_HOME (instance locks, download locks, the store lock). */
function locks(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of existsSync(d) ? readdirSync(d, { withFileTypes: true }) : []) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/\.lock$|^lock$/.test(e.name)) out.push(join(d, e.name));
    }
  };
  walk(home);
  return out;
}

test('Ctrl-C of launch while it waits for readiness: 130, the instance and its QEMU are gone', async () => {
  const r = await interruptAt(['launch', blank, '--name', 'sig-launch', '--timeout', '600'], (e) => e.type === 'step' && (e.id ?? '').startsWith('ready.') && e.state === 'start');
  assert.equal(r.interrupted, true, r.stderr);
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /interrupted/);
  assert.deepEqual(instances(), []);
  assert.deepEqual(processesOfHome(), []);
  assert.deepEqual(locks(), []);
});

test('Ctrl-C of create and of image pull mid-download: 130, no instance, nothing stored, no lock held; the next pull resumes', async () => {
  server.fault(DEB, { rateBytesPerSec: 64 * 1024, times: 2 });
  const started = (e: Ev) => e.type === 'progress' && e.id === 'image.download' && (e.current ?? 0) > 0;
  const c = await interruptAt(['create', 'debian-12', '--name', 'sig-create'], started);
  assert.equal(c.interrupted, true, c.stderr);
  assert.equal(c.code, 130, c.stderr);
  assert.deepEqual(instances(), []);
  // (the blank image of the launch test is stored; the downloaded one must not be)
  const downloaded = async () => (await storedImages()).filter((i) => i.id === sha256(image));
  assert.deepEqual(await downloaded(), []);
  assert.deepEqual(locks(), []);
  const p = await interruptAt(['image', 'pull', 'debian-12'], started);
  assert.equal(p.interrupted, true, p.stderr);
  assert.equal(p.code, 130, p.stderr);
  assert.deepEqual(await downloaded(), []);
  assert.deepEqual(locks(), []);
  // The partial file is kept for a resume, and is not taken for the image: the next pull resumes and verifies.
  const before = server.requests.filter((q) => q.path === DEB).length;
  const ok = await kumo(['image', 'pull', 'debian-12', '--json'], { home, env });
  assert.equal(ok.code, 0, ok.stderr);
  const reqs = server.requests.filter((q) => q.path === DEB).slice(before);
  assert.equal(reqs.length, 1);
  assert.match(reqs[0]!.range ?? '', /^bytes=\d+-$/);
  assert.deepEqual((await downloaded()).map((i) => i.aliases), [['debian-12']]);
});

test('Ctrl-C of capture while its sealing copy boots: 130, nothing stored, the copy gone, the instance unchanged', async () => {
  const c = await kumo(['create', blank, '--name', 'sig-cap'], { home, env });
  assert.equal(c.code, 0, c.stderr);
  const recBefore = readFileSync(join(home, 'instances', 'sig-cap', 'instance.json'), 'utf8');
  const imagesBefore = (await storedImages()).length;
  const r = await interruptAt(['capture', 'sig-cap', '--image', 'sig-golden'], (e) => e.type === 'step' && (e.id ?? '').startsWith('ready.') && e.state === 'start');
  assert.equal(r.interrupted, true, r.stderr);
  assert.equal(r.code, 130, r.stderr);
  const imgs = await storedImages();
  assert.equal(imgs.length, imagesBefore);
  assert.equal(imgs.some((i) => i.name === 'sig-golden' || i.aliases.includes('sig-golden')), false);
  assert.deepEqual(processesOfHome(), []);
  assert.deepEqual(locks(), []);
  assert.deepEqual(instances(), ['sig-cap']);
  assert.equal(readFileSync(join(home, 'instances', 'sig-cap', 'instance.json'), 'utf8'), recBefore);
  const tmpLeft = existsSync(join(home, 'tmp')) ? readdirSync(join(home, 'tmp')).filter((n) => n.startsWith('capture-')) : [];
  assert.deepEqual(tmpLeft, []);
  const l = await kumo(['list', '--json'], { home, env });
  assert.equal((JSON.parse(l.stdout) as { name: string; status: string }[])[0]?.status, 'stopped');
});
