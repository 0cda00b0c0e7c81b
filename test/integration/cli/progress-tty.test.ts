/**
 * The live progress lines in a real terminal (tmux): `kumo image pull A B` pulls two images at
 * once from an HTTP server on 127.0.0.1 that sends half of each file and then holds it. While both
 * are held, the screen must show two live lines at once, one per image, each with its own bar;
 * once released, the live lines are gone and each image's finished steps and result are there.
 * The screen is read with capture-pane (what a user sees, escapes applied by tmux itself).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KUMO_BIN } from '../../helpers/cli.js';

let dir = '';
let server: Server;
let base = '';
const sock = `kumo-test-${process.pid}`;
const files = new Map<string, Buffer>();
let release!: () => void;
const released = new Promise<void>((r) => (release = r));
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', sock, '-f', '/dev/null', ...args], { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', 'kumo');

async function until(what: string, ok: (s: string) => boolean, timeoutMs = 120_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const s = screen();
    if (ok(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Error(`the terminal never showed ${what}; it shows:\n${s}`);
    await new Promise((r) => setTimeout(r, 100)); // polling the screen, not waiting for a duration
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-tty-'));
  for (const n of ['alpha', 'beta']) {
    const raw = join(dir, `${n}.raw`);
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=4', 'status=none']);
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, join(dir, `${n}.qcow2`)]);
    files.set(`/${n}.qcow2`, await readFile(join(dir, `${n}.qcow2`)));
  }
  const sums = [...files].map(([p, b]) => `${createHash('sha256').update(b).digest('hex')}  ${p.slice(1)}`).join('\n') + '\n';
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/SHA256SUMS') return void res.end(sums);
    const body = files.get(path);
    if (!body || req.method !== 'GET') return void res.writeHead(body ? 200 : 404, body ? { 'Content-Length': body.length } : {}).end();
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
    const half = body.length >> 1;
    res.write(body.subarray(0, half));
    void released.then(() => res.end(body.subarray(half)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  tmux('new-session', '-d', '-s', 'kumo', '-x', '180', '-y', '30', 'bash --norc --noprofile');
});

after(async () => {
  release();
  try {
    tmux('kill-server');
  } catch {
    /* already gone */
  }
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test('two pulls at once: a live line each while both run, then their results and no live line left', async () => {
  const home = join(dir, 'home');
  const a = `${base}/alpha.qcow2`;
  const b = `${base}/beta.qcow2`;
  tmux('send-keys', '-t', 'kumo', `clear; NO_COLOR=1 KUMO_HOME=${home} ${process.execPath} ${KUMO_BIN} image pull ${a} ${b}; echo "EXIT=$?"`, 'Enter');
  // both held at half: two bars on two lines at the same moment
  const live = await until('a progress line for each image', (s) => /alpha\.qcow2: .*\[#+\.+\]\s+50%/.test(s) && /beta\.qcow2: .*\[#+\.+\]\s+50%/.test(s));
  const lines = live.split('\n');
  const la = lines.findIndex((l) => /alpha\.qcow2: .*\[#+\.+\]/.test(l));
  const lb = lines.findIndex((l) => /beta\.qcow2: .*\[#+\.+\]/.test(l));
  assert.notEqual(la, lb, 'each task has a line of its own');
  assert.equal(Math.abs(la - lb), 1, `the live lines are one block:\n${live}`);
  for (const l of lines) assert.ok(l.length <= 179, `a live line is cut to the terminal width: ${l}`);
  release();
  const end = await until('the end of the command', (s) => /EXIT=\d+/.test(s));
  assert.match(end, /EXIT=0/, end);
  // the live lines are gone; each image's finished steps are printed under its name
  assert.doesNotMatch(end, /\[#+\.*\]/, `no bar is left on the screen:\n${end}`);
  for (const [url, n] of [[a, 'alpha'], [b, 'beta']] as const) {
    assert.match(end, new RegExp(`✓ ${url.replace(/[.]/g, '\\.')}: Downloading ${n}\\.qcow2 \\(`));
    assert.match(end, new RegExp(`✓ ${url.replace(/[.]/g, '\\.')}: Verified ${n}\\.qcow2`));
  }
  assert.equal((end.match(/\/images\//g) ?? []).length, 2, `both stored paths printed:\n${end}`);
});
