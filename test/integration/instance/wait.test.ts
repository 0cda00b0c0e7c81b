/**
 * The wait module against real things on this machine, no VM: a context whose "guest" commands
 * run here (so the guest-side probes, bash's /dev/tcp for ports and HTTP, tail for log files, a
 * shell for commands, run for real against servers on 127.0.0.1) and whose console log is a file
 * the test appends to. Each strategy holds; each times out naming what was seen last; an instance
 * that goes away ends the wait at once; an abort interrupts it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { conditionsFor, waitConditions, type WaitContext, type WaitStrategy } from '../../../src/instance/wait.js';

let dir = '';
let tcp: Server;
let http: HttpServer;
let tcpPort = 0;
let httpPort = 0;
let closedPort = 0;

function context(consoleLog: string, gone: () => Promise<string | undefined> = async () => undefined): WaitContext {
  return {
    name: 'fake',
    consoleLog,
    gone,
    async exec(command, o) {
      const argv = typeof command === 'string' ? ['sh', '-c', command] : [...command];
      const r = await run(argv[0]!, argv.slice(1), { allowFailure: true, timeoutMs: o.timeoutMs, ...(o.signal ? { signal: o.signal } : {}) });
      return { code: r.code ?? 255, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

function waitFor(ctx: WaitContext, s: WaitStrategy | WaitStrategy[], timeoutMs = 20_000, signal?: AbortSignal) {
  return waitConditions(ctx, conditionsFor(s), { timeoutMs, ...(signal ? { signal } : {}) });
}

async function timeoutOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  assert.fail('expected an error');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-wait-'));
  tcp = createServer((s) => s.end());
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  tcpPort = (tcp.address() as { port: number }).port;
  http = createHttpServer((req, res) => {
    res.statusCode = req.url === '/health' ? 204 : 404;
    res.end();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as { port: number }).port;
  const c = createServer();
  await new Promise<void>((r) => c.listen(0, '127.0.0.1', r));
  closedPort = (c.address() as { port: number }).port;
  await new Promise((r) => c.close(r));
});

after(async () => {
  tcp.close();
  http.close();
  await rm(dir, { recursive: true, force: true });
});

test('port: holds for a listening port; a closed one times out with connection refused', async () => {
  const ctx = context(join(dir, 'none.log'));
  const r = await waitFor(ctx, { port: tcpPort });
  assert.equal(r.held[0]!.seen, `guest port ${tcpPort} accepted a connection`);
  const e = await timeoutOf(waitFor(ctx, { port: closedPort }, 1200));
  assert.equal(e.code, 'WAIT_TIMEOUT');
  assert.match(e.message, new RegExp(`waiting for guest port ${closedPort} accepting connections; last seen: guest port ${closedPort}: connection refused`));
});

test('http: the status asked holds; another one times out with the last status seen', async () => {
  const ctx = context(join(dir, 'none.log'));
  const r = await waitFor(ctx, { http: { port: httpPort, path: '/health', status: 204 } });
  assert.match(r.held[0]!.seen, /^HTTP status 204/);
  const e = await timeoutOf(waitFor(ctx, { http: { port: httpPort, path: '/health' } }, 1200));
  assert.match(e.message, /HTTP 200 from GET \/health on guest port \d+; last seen: HTTP status 204/);
  const e2 = await timeoutOf(waitFor(ctx, { http: { port: closedPort } }, 1200));
  assert.match(e2.message, /last seen: guest port \d+: connection refused/);
});

test('console log: a line appended while waiting holds (also split over two writes); the last line is named on timeout', async () => {
  const log = join(dir, 'serial.log');
  await writeFile(log, 'booting\r\n\x1b[32m[ OK ]\x1b[0m Started something.\r\n');
  const ctx = context(log);
  const waiting = waitFor(ctx, { log: /app is ready on port \d+/ });
  await appendFile(log, 'app is rea');
  await appendFile(log, 'dy on port 8080\r\n');
  const r = await waiting;
  assert.equal(r.held[0]!.seen, 'console: app is ready on port 8080');
  const e = await timeoutOf(waitFor(ctx, { log: 'never' }, 1200));
  assert.match(e.message, /a serial console line matching \/never\/; last seen: last console line: app is ready on port 8080/);
  const e2 = await timeoutOf(waitFor(context(join(dir, 'missing.log')), { log: 'x' }, 800));
  assert.match(e2.message, /no serial console output yet/);
});

test('log file: a matching line holds; a missing file and a file without the line say so', async () => {
  const f = join(dir, 'app.log');
  const ctx = context(join(dir, 'none.log'));
  const e1 = await timeoutOf(waitFor(ctx, { logFile: f, log: /ready/ }, 800));
  assert.match(e1.message, /app\.log does not exist yet/);
  await writeFile(f, 'starting\nready\n');
  assert.equal((await waitFor(ctx, { logFile: f, log: /^ready$/ })).held[0]!.seen, `${f}: ready`);
  const e2 = await timeoutOf(waitFor(ctx, { logFile: f, log: /stopped/ }, 800));
  assert.match(e2.message, /last seen: last line of .*app\.log: ready/);
});

test('command: exit 0 holds; a failing one times out with its status and stderr; all of several must hold', async () => {
  const ctx = context(join(dir, 'none.log'));
  await waitFor(ctx, { command: ['test', '-d', dir] });
  const e = await timeoutOf(waitFor(ctx, [{ port: tcpPort }, { command: 'echo not yet >&2; exit 4' }, { command: 'no-such-program-xyz' }], 1200));
  assert.equal(e.code, 'WAIT_TIMEOUT');
  assert.match(e.message, /waiting for 2 conditions:\n  command 'echo not yet >&2; exit 4' succeeding: 'echo not yet >&2; exit 4' exited 4: not yet\n  command 'no-such-program-xyz' succeeding: 'no-such-program-xyz' exited 127 \(command not found\)/);
  assert.doesNotMatch(e.message, /accepting connections/, 'the port held');
});

test('an instance that goes away ends the wait at once; an abort interrupts it', async () => {
  let polls = 0;
  const ctx = context(join(dir, 'none.log'), async () => (++polls > 1 ? 'crashed: qemu.pid names a dead process' : undefined));
  const e = await timeoutOf(waitFor(ctx, { port: closedPort }, 600_000));
  assert.equal(e.code, 'INSTANCE_DIED');
  assert.match(e.message, /not running any more \(crashed: qemu\.pid names a dead process\) while waiting for guest port \d+ accepting connections/);
  const ac = new AbortController();
  const waiting = waitFor(context(join(dir, 'none.log')), { command: 'false' }, 600_000, ac.signal);
  ac.abort();
  assert.equal((await timeoutOf(waiting)).code, 'INTERRUPTED');
});

test('launch({ waitFor }) with a condition that can never hold is refused before anything is made', async () => {
  const { launch } = await import('../../../src/index.js');
  const { readdir } = await import('node:fs/promises');
  const home = join(dir, 'home');
  await assert.rejects(
    launch({ image: join(dir, 'no-such-image.qcow2'), name: 'never', home, waitFor: [{ port: 80 }, { log: 'a(' }] }),
    (e: Error & { code?: string }) => e.code === 'INVALID_WAIT' && /not a valid regular expression/.test(e.message),
  );
  const made = await readdir(join(home, 'instances')).catch(() => []);
  assert.deepEqual(made, []);
});
