/**
 * Disposable VMs for test suites, on ONE VM cloned from a warm template of the test image
 * (library launch with a dynamic port and a launch-time wait): the dynamic port reaches a guest
 * web server through mappedPort and through `kumo port list --json` / `kumo info`; each wait
 * strategy (port, HTTP status, serial console line, guest log file line, command) holds, and
 * times out with an error naming the condition and what was seen last; a host port already taken
 * is a typed error; a dynamic port added live gets a port at once. Boots: none of its own: a
 * clone of the warm template the e2e files share (test/helpers/warm-home.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import { get } from 'node:http';
import { launch, WaitTimeoutError, type Instance } from '../../src/index.js';
import { isKumoError } from '../../src/core/errors.js';
import { kumo } from '../helpers/cli.js';
import { testImagePath } from '../helpers/test-image.js';
import { warmHome, WARM_SHAPE, type WarmHome } from '../helpers/warm-home.js';

let home = '';
let warm: WarmHome | undefined;
let vm: Instance | undefined;
const NAME = `disp-${randomBytes(2).toString('hex')}`;
const MARK = `kumo-mark-${randomBytes(3).toString('hex')}`;

function theVm(): Instance {
  assert.ok(vm, 'the VM was launched');
  return vm;
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** The typed error a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isKumoError(e), `a typed error, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

before(async () => {
  warm = await warmHome();
  home = warm.home;
  vm = await launch({
    image: testImagePath(),
    name: NAME,
    home,
    ...WARM_SHAPE,
    timeout: 900,
    ports: [{ guest: 8080 }],
    // launch waits for these after ready
    // (a clone's console has no boot: its first line is kumo's, written with its identity)
    waitFor: [{ command: 'test -d /tmp' }, { log: new RegExp(`kumo: ${NAME} restored from a warm template`) }],
  });
  // a guest web server on 8080, detached from the ssh session
  const r = await vm.exec(
    // every fd of the server away from the ssh session, or the session stays open
    'mkdir -p /tmp/www && echo "hello from the guest" > /tmp/www/hello.txt && { setsid nohup python3 -m http.server 8080 --directory /tmp/www >/tmp/http.log 2>&1 </dev/null & }',
    { timeoutMs: 60_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(vm.started?.restored?.kind, 'template', 'a clone of the shared warm template (restored, not booted)');
});

after(async () => {
  if (vm) await vm.delete().catch(() => {});
  await warm?.done();
});

test('http strategy holds once the guest web server answers; the dynamic port reaches it from the host', async () => {
  const w = await theVm().waitFor({ http: { port: 8080, path: '/hello.txt', status: 200 } }, { timeoutMs: 60_000 });
  assert.match(w.held[0]!.seen, /HTTP status 200/);
  const port = await theVm().mappedPort(8080);
  assert.ok(port > 0 && port < 65536, `a host port: ${port}`);
  const got = await httpGet(port, '/hello.txt');
  assert.equal(got.status, 200);
  assert.equal(got.body, 'hello from the guest\n');

  const list = await kumo(['port', 'list', NAME, '--json'], { home });
  assert.equal(list.code, 0, list.stderr);
  const l = JSON.parse(list.stdout) as { ports: { hostPort: number; guestPort: number; dynamic?: boolean; hostAddr: string }[]; running: boolean };
  assert.equal(l.running, true);
  assert.deepEqual(l.ports.map((p) => [p.hostAddr, p.hostPort, p.guestPort, p.dynamic]), [['127.0.0.1', port, 8080, true]]);

  const info = await kumo(['info', NAME], { home });
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, new RegExp(`127\\.0\\.0\\.1:${port}->8080/tcp \\(dynamic\\)`));
  const infoJson = JSON.parse((await kumo(['info', NAME, '--json'], { home })).stdout) as { record: { ports: { hostPort: number }[] } };
  assert.equal(infoJson.record.ports[0]!.hostPort, port);
});

test('port strategy: holds for a listening guest port, times out naming a closed one and what was seen', async () => {
  await theVm().waitFor({ port: 8080 }, { timeoutMs: 30_000 });
  const e = await rejection(theVm().waitFor({ port: 8081 }, { timeoutMs: 4000 }));
  assert.ok(e instanceof WaitTimeoutError);
  assert.equal(e.code, 'WAIT_TIMEOUT');
  assert.match(e.message, /guest port 8081 accepting connections; last seen: guest port 8081: connection refused/);
});

test('http strategy times out with the last status seen; kumo wait --http holds and times out with exit 8', async () => {
  const e = await rejection(theVm().waitFor({ http: { port: 8080, path: '/missing', status: 200 } }, { timeoutMs: 4000 }));
  assert.equal(e.code, 'WAIT_TIMEOUT');
  assert.match(e.message, /HTTP 200 from GET \/missing on guest port 8080; last seen: HTTP status 404/);

  const ok = await kumo(['wait', NAME, '--port', '8080', '--http', '/missing=404', '--timeout', '30s'], { home });
  assert.equal(ok.code, 0, ok.stderr);
  const bad = await kumo(['wait', NAME, '--port', '8080', '--http', '/missing', '--timeout', '4s'], { home });
  assert.equal(bad.code, 8, bad.stderr);
  assert.match(bad.stderr, /timed out after 4 s waiting for HTTP 200 from GET \/missing on guest port 8080; last seen: HTTP status 404/);
});

test('log strategy: a line written to the serial console holds; a pattern never written times out with the last console line', async () => {
  const r = await theVm().exec(['sudo', '-n', 'sh', '-c', `echo ${MARK} > /dev/ttyS0`]);
  assert.equal(r.code, 0, r.stderr);
  const w = await theVm().waitFor({ log: new RegExp(MARK) }, { timeoutMs: 30_000 });
  assert.match(w.held[0]!.seen, new RegExp(`console: .*${MARK}`));
  const cli = await kumo(['wait', NAME, '--log', `${MARK}$`, '--timeout', '30s'], { home });
  assert.equal(cli.code, 0, cli.stderr);

  const e = await rejection(theVm().waitFor({ log: /never-printed-\d{9}/ }, { timeoutMs: 4000 }));
  assert.equal(e.code, 'WAIT_TIMEOUT');
  assert.match(e.message, /a serial console line matching \/never-printed-\\d\{9\}\/; last seen: last console line: \S/);
});

test('log file strategy: a line appended to a guest file holds; a missing file times out saying so', async () => {
  const r = await theVm().exec('echo "app: starting" >> /tmp/app.log; echo "app: ready on 8080" >> /tmp/app.log');
  assert.equal(r.code, 0, r.stderr);
  const w = await theVm().waitFor({ logFile: '/tmp/app.log', log: /ready on \d+/ }, { timeoutMs: 30_000 });
  assert.equal(w.held[0]!.seen, '/tmp/app.log: app: ready on 8080');
  const cli = await kumo(['wait', NAME, '--log-file', '/tmp/app.log', '--log', 'starting', '--timeout', '30s'], { home });
  assert.equal(cli.code, 0, cli.stderr);

  const e1 = await rejection(theVm().waitFor({ logFile: '/tmp/app.log', log: /stopped/ }, { timeoutMs: 4000 }));
  assert.match(e1.message, /a line of \/tmp\/app\.log matching \/stopped\/; last seen: last line of \/tmp\/app\.log: app: ready on 8080/);
  const e2 = await rejection(theVm().waitFor({ logFile: '/tmp/none.log', log: /x/ }, { timeoutMs: 4000 }));
  assert.match(e2.message, /\/tmp\/none\.log does not exist yet/);
});

test('command strategy: holds when the command succeeds; times out with its last exit status and stderr', async () => {
  await theVm().waitFor({ command: 'test -f /tmp/app.log' }, { timeoutMs: 30_000 });
  const e = await rejection(theVm().waitFor({ command: 'echo not-yet >&2; exit 3' }, { timeoutMs: 4000 }));
  assert.equal(e.code, 'WAIT_TIMEOUT');
  assert.match(e.message, /command 'echo not-yet >&2; exit 3' succeeding; last seen: 'echo not-yet >&2; exit 3' exited 3: not-yet/);
  // several conditions: all must hold; the error lists the ones that did not
  const cli = await kumo(['wait', NAME, '--port', '8080', '--command', 'false', '--timeout', '4s'], { home });
  assert.equal(cli.code, 8, cli.stderr);
  assert.match(cli.stderr, /waiting for command 'false' succeeding; last seen: 'false' exited 1/);
  assert.doesNotMatch(cli.stderr, /guest port 8080 accepting/);
});

test('a fixed host port already taken is PORT_IN_USE; a dynamic port added live gets a free port at once', async () => {
  const holder: Server = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const taken = (holder.address() as { port: number }).port;
  try {
    const r = await kumo(['port', 'add', NAME, `${taken}:80`], { home });
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, new RegExp(`port 127\\.0\\.0\\.1:${taken} is already taken`));
    assert.match(r.stderr, /0 to let kumo pick a free one/);
  } finally {
    await new Promise((r) => holder.close(r));
  }
  // a second dynamic forward, to the guest's sshd, added while the VM runs
  const f = await theVm().addPort('0:22');
  assert.equal(f.dynamic, true);
  assert.ok(f.hostPort > 0);
  assert.equal(await theVm().mappedPort(8080), (await theVm().record()).ports[0]!.hostPort, 'the first one kept its port');
  const banner = await new Promise<string>((resolve, reject) => {
    const c = connect(f.hostPort, '127.0.0.1');
    c.once('data', (d) => {
      resolve(d.toString());
      c.destroy();
    });
    c.once('error', reject);
  });
  assert.match(banner, /^SSH-2\.0-/);
  const removed = await theVm().removePort('0:22');
  assert.equal(removed.hostPort, f.hostPort);
});
