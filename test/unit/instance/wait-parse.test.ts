/** Wait strategies and dynamic ports as input: what is accepted, and the typed errors for what can never hold. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conditionsFor, parseHttpFlag, toRegExp, WaitTimeoutError } from '../../../src/instance/wait.js';
import { parsePortForwardInput, validateSpec } from '../../../src/config/spec.js';
import { parseArgs } from '../../../src/cli/command.js';
import waitCommand, { waitFlags } from '../../../src/cli/commands/wait.js';
import { exitCodeFor } from '../../../src/cli/exit.js';
import { isKumoError } from '../../../src/core/errors.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    assert.ok(isKumoError(e), String(e));
    return e.code;
  }
  return undefined;
}

async function codeOfAsync(p: Promise<unknown>): Promise<{ code: string; message: string; hint?: string }> {
  try {
    await p;
  } catch (e) {
    assert.ok(isKumoError(e), String(e));
    return e;
  }
  assert.fail('expected an error');
}

test('dynamic ports: 0:GUEST, ADDR:0:GUEST, 0:GUEST/udp and { guest } without a host port', () => {
  assert.deepEqual(parsePortForwardInput('0:80'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true });
  assert.deepEqual(parsePortForwardInput('0:53/udp'), { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 53, dynamic: true });
  assert.deepEqual(parsePortForwardInput('127.0.0.1:0:80'), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true });
  assert.deepEqual(parsePortForwardInput({ guest: 80 }), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true });
  assert.deepEqual(parsePortForwardInput({ host: 0, guest: 80 }), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true });
  // a stored dynamic forward (with the port it got last) given back is dynamic again
  assert.deepEqual(parsePortForwardInput({ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 41234, guestPort: 80, dynamic: true }), { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true });
  assert.match(parsePortForwardInput('0:70000') as string, /guest port 70000 is out of range/);
  assert.match(parsePortForwardInput('70000:80') as string, /host port 70000 is out of range \(1-65535, or 0 to pick a free one\)/);
  assert.match(parsePortForwardInput({ host: 0 }) as string, /no guest port/);
  assert.match(parsePortForwardInput('0:80:90') as string, /not HOST:GUEST/);
  // two dynamic forwards are not "the same host port twice"; two fixed ones are
  assert.equal(validateSpec({ name: 'a', ports: ['0:80', '0:81'] }).ports.length, 2);
  assert.throws(() => validateSpec({ name: 'a', ports: ['8080:80', '8080:81'] }), /given twice/);
  assert.throws(() => validateSpec({ name: 'a', ports: ['0:80', { guest: 80 }] }), /ports\[1\]: a dynamic forward to guest port 80\/tcp is given twice/);
  assert.equal(validateSpec({ name: 'a', ports: ['0:80', '0:80/udp', '8080:80'] }).ports.length, 3);
  assert.throws(() => validateSpec({ name: 'a', ports: ['0:0'] }), (e: Error & { code?: string }) => e.code === 'INVALID' && /ports\[0\]: guest port 0 is out of range/.test(e.message));
});

test('wait strategies: accepted shapes and the conditions they name', () => {
  const c = conditionsFor([{ port: 80 }, { http: { port: 8080 } }, { http: { port: 80, path: '/health', status: 204 } }, { log: /ready/i }, { log: 'up' }, { logFile: '/var/log/app.log', log: /x/ }, { command: 'test -f /x' }, { command: ['test', '-f', '/x'] }]);
  assert.deepEqual(
    c.map((x) => x.describe),
    [
      'guest port 80 accepting connections',
      'HTTP 200 from GET / on guest port 8080',
      'HTTP 204 from GET /health on guest port 80',
      'a serial console line matching /ready/i',
      'a serial console line matching /up/',
      'a line of /var/log/app.log matching /x/',
      "command 'test -f /x' succeeding",
      "command 'test -f /x' succeeding",
    ],
  );
  // a g or y flag would make test() stateful: dropped
  assert.equal(toRegExp(/a/gy).flags, '');
});

test('wait conditions that can never hold are INVALID_WAIT at once', () => {
  for (const bad of [
    [],
    { port: 0 },
    { port: 70000 },
    { port: '80' },
    { http: { path: '/' } },
    { http: { port: 80, path: 'health' } },
    { http: { port: 80, path: '/a b' } },
    { http: { port: 80, status: 42 } },
    { log: '(' },
    { log: '' },
    { logFile: 'relative.log', log: /x/ },
    { logFile: '/x.log' },
    { command: '' },
    { command: [] },
    { port: 80, command: 'true' },
    { colour: 'blue' },
    null,
  ]) {
    assert.equal(codeOf(() => conditionsFor(bad as never)), 'INVALID_WAIT', JSON.stringify(bad));
  }
  try {
    toRegExp('a(b');
    assert.fail('no error');
  } catch (e) {
    assert.match((e as Error).message, /log pattern 'a\(b' is not a valid regular expression/);
    assert.match((e as { hint: string }).hint, /escape/);
  }
});

test('--http PATH[=STATUS]', () => {
  assert.deepEqual(parseHttpFlag('/'), { path: '/', status: 200 });
  assert.deepEqual(parseHttpFlag('/health=204'), { path: '/health', status: 204 });
  assert.deepEqual(parseHttpFlag('/q?a=b=301'), { path: '/q?a=b', status: 301 });
  assert.deepEqual(parseHttpFlag('=404'), { path: '/', status: 404 });
  assert.equal(codeOf(() => parseHttpFlag('health')), 'INVALID_WAIT');
  assert.equal(codeOf(() => parseHttpFlag('/x=99')), 'INVALID_WAIT');
});

test('kumo wait flags: strategies, and usage errors for combinations that cannot hold', async () => {
  const parse = (argv: string[]) => parseArgs(waitCommand, argv, 'wait');
  assert.deepEqual(await waitFlags(parse(['web', '--port', '80', '--port', '5432'])), [{ port: 80 }, { port: 5432 }]);
  assert.deepEqual(await waitFlags(parse(['web', '--port', '80', '--http', '/health=204'])), [{ http: { port: 80, path: '/health', status: 204 } }]);
  assert.deepEqual(await waitFlags(parse(['web', '--log', 'ready', '--log-file', '/var/log/a.log', '--command', 'true'])), [{ logFile: '/var/log/a.log', log: 'ready' }, { command: 'true' }]);
  assert.deepEqual(await waitFlags(parse(['web'])), []);
  const noPort = await codeOfAsync(waitFlags(parse(['web', '--http', '/'])));
  assert.equal(noPort.code, 'USAGE');
  assert.match(noPort.message, /--http needs --port/);
  assert.equal((await codeOfAsync(waitFlags(parse(['web', '--http', '/', '--port', '1', '--port', '2'])))).code, 'USAGE');
  assert.equal((await codeOfAsync(waitFlags(parse(['web', '--port', '99999'])))).code, 'USAGE');
  assert.equal((await codeOfAsync(waitFlags(parse(['web', '--log-file', '/x'])))).code, 'USAGE');
  const re = await codeOfAsync(waitFlags(parse(['web', '--log', '[unclosed'])));
  assert.equal(re.code, 'INVALID_WAIT');
  assert.equal(exitCodeFor(re), 3);
});

test('WAIT_TIMEOUT names each open condition and what was seen last; exit status 8', () => {
  const one = new WaitTimeoutError('web', 2000, [{ describe: 'guest port 81 accepting connections', seen: 'guest port 81: connection refused' }], []);
  assert.equal(one.code, 'WAIT_TIMEOUT');
  assert.equal(one.message, "instance 'web': timed out after 2 s waiting for guest port 81 accepting connections; last seen: guest port 81: connection refused");
  assert.equal(exitCodeFor(one), 8);
  const two = new WaitTimeoutError('web', 1500, [{ describe: 'a', seen: 'x' }, { describe: 'b', seen: 'y' }], ['c']);
  assert.match(two.message, /timed out after 1\.5 s waiting for 2 conditions:\n  a: x\n  b: y$/);
  assert.deepEqual(two.details!.conditions, [
    { condition: 'a', held: false, lastSeen: 'x' },
    { condition: 'b', held: false, lastSeen: 'y' },
    { condition: 'c', held: true },
  ]);
});
