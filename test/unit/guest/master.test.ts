import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, stat, chmod, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { sshArgv, scpArgv, remotePath, type SshTarget } from '../../../src/guest/ssh.js';
import {
  SOCKET_PATH_MAX,
  controlName,
  controlOptions,
  controlPathIn,
  probeSocket,
  removeStaleSocket,
  runtimeDir,
  runtimeDirCandidates,
  sharingEnabled,
} from '../../../src/guest/master.js';
import { commandName, remoteCommand } from '../../../src/guest/command.js';

const t: SshTarget = { name: 'web', host: '127.0.0.1', port: 40022, user: 'kumo', identity: '/k/id_ed25519', knownHosts: '/very/long/kumo/home/'.repeat(8) + 'instances/web/known_hosts', alias: 'kumo-web' };

function opts(argv: string[]): string[] {
  return argv.flatMap((a, i) => (a === '-o' ? [argv[i + 1]!] : []));
}

test('ControlPath: short however long KUMO_HOME is, one per instance and address', () => {
  const p = controlPathIn('/tmp/kumo-0', t)!;
  assert.equal(p, `/tmp/kumo-0/${controlName(t)}`);
  assert.match(controlName(t), /^[0-9a-f]{16}$/);
  // OpenSSH binds at PATH + '.' + 16 random characters: that must fit in sun_path too.
  assert.ok(Buffer.byteLength(p) + 17 < SOCKET_PATH_MAX);
  assert.notEqual(controlName({ ...t, port: 40023 }), controlName(t));
  assert.notEqual(controlName({ ...t, knownHosts: '/other/known_hosts' }), controlName(t));
  assert.notEqual(controlName({ ...t, user: 'root' }), controlName(t));
  assert.equal(controlName({ ...t }), controlName(t));
  assert.equal(controlPathIn('/x'.repeat(40), t), undefined);
});

test('runtime folder: $XDG_RUNTIME_DIR/kumo, else /tmp/kumo-UID; sharing can be turned off', () => {
  assert.deepEqual(runtimeDirCandidates({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000), ['/run/user/1000/kumo', '/tmp/kumo-1000']);
  assert.deepEqual(runtimeDirCandidates({}, 0), ['/tmp/kumo-0']);
  assert.deepEqual(runtimeDirCandidates({ XDG_RUNTIME_DIR: 'relative' }, 5), ['/tmp/kumo-5']);
  assert.equal(sharingEnabled({}), true);
  for (const off of ['0', 'no', 'off', 'false']) assert.equal(sharingEnabled({ KUMO_SSH_SHARING: off }), false, off);
});

test('runtime folder is made 0700; a folder others can enter is not used', async () => {
  const base = await mkdtemp(join(tmpdir(), 'km-'));
  try {
    const d = await runtimeDir({ KUMO_RUNTIME_DIR: join(base, 'rt') });
    assert.equal(d, join(base, 'rt'));
    assert.equal((await stat(d!)).mode & 0o777, 0o700);
    await mkdir(join(base, 'open'));
    await chmod(join(base, 'open'), 0o755);
    const other = await runtimeDir({ KUMO_RUNTIME_DIR: join(base, 'open') });
    assert.notEqual(other, join(base, 'open'));
    assert.equal(await runtimeDir({ KUMO_SSH_SHARING: '0' }), undefined);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('a shared ssh and scp keep every pinning option and add the master options', () => {
  const cp = '/tmp/kumo-0/0123456789abcdef';
  for (const argv of [sshArgv(t, 'true', { controlPath: cp }), scpArgv(t, '/a', remotePath(t, '/b'), { controlPath: cp })]) {
    const o = opts(argv);
    for (const want of ['StrictHostKeyChecking=yes', `UserKnownHostsFile=${t.knownHosts}`, 'HostKeyAlias=kumo-web', 'GlobalKnownHostsFile=/dev/null', 'BatchMode=yes', 'IdentitiesOnly=yes', 'ControlMaster=auto', `ControlPath=${cp}`])
      assert.ok(o.includes(want), want);
    assert.ok(o.some((x) => /^ControlPersist=\d+$/.test(x)));
    assert.deepEqual(argv.slice(0, 2), ['-F', '/dev/null']);
  }
  assert.ok(!opts(sshArgv(t, 'true')).some((x) => x.startsWith('Control')), 'no sharing unless asked');
  assert.deepEqual(controlOptions(cp, 'no'), ['ControlMaster=no', `ControlPath=${cp}`]);
});

test('probeSocket tells a live master from a stale socket; a stale one is removed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'km-'));
  const live = join(dir, 'live');
  const srv = createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(live, r));
  try {
    assert.equal(await probeSocket(live), 'alive');
    assert.equal(await probeSocket(join(dir, 'none')), 'absent');
    // A socket file whose listener is gone: what a killed master leaves.
    const stale = join(dir, 'stale');
    await run(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`], { allowFailure: true });
    assert.equal(await probeSocket(stale), 'stale');
    assert.equal(await removeStaleSocket(stale), true);
    assert.equal(await probeSocket(stale), 'absent');
    await writeFile(join(dir, 'plain'), 'x');
    assert.equal(await probeSocket(join(dir, 'plain')), 'stale');
    assert.equal(await removeStaleSocket(live), false);
  } finally {
    srv.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** What a POSIX shell makes of the remote command: printf each argument of `sh -c LINE`. */
async function sh(line: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run('sh', ['-c', line], { allowFailure: true, env: { PATH: process.env.PATH, SHELL: '/bin/sh', ...env } });
}

test('remoteCommand: argv words arrive intact; a string is shell syntax', async () => {
  const words = ['printf', '%s|', 'a b', "it's", '$HOME', '`id`', '"q"', '*', '', 'x;y', 'new\nline'];
  assert.equal((await sh(remoteCommand(words))).stdout, words.slice(2).map((w) => `${w}|`).join(''));
  assert.equal((await sh(remoteCommand('echo a | tr a b'))).stdout, 'b\n');
  assert.equal(remoteCommand('uname -a'), 'uname -a', 'a plain string is passed as is');
});

test('remoteCommand: env, cwd and timeout as the shell runs them', async () => {
  const r = await sh(remoteCommand(['sh', '-c', 'printf "%s|%s|%s" "$A" "$B" "$PWD"'], { env: { A: "it's $x", B: 'two\nlines' }, cwd: '/tmp' }));
  assert.equal(r.stdout, "it's $x|two\nlines|/tmp");
  const bad = await sh(remoteCommand(['true'], { cwd: '/no/such/dir' }));
  assert.equal(bad.code, 1);
  // GNU timeout's status: the command was stopped (a sleep that ran to its end would give 0)
  const slow = await sh(remoteCommand(['sleep', '5'], { timeoutMs: 300 }));
  assert.equal(slow.code, 124);
  assert.equal((await sh(remoteCommand('exit 3', { timeoutMs: 5000 }))).code, 3);
});

test('remoteCommand: user goes through sudo -n -u, quoted', () => {
  const line = remoteCommand(['id', '-un'], { user: 'www-data', cwd: '/srv' });
  assert.match(line, /^sudo -n -u www-data -- sh -c '/);
  assert.match(line, /cd -- /);
});

test('remoteCommand: bad names are typed errors', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return undefined;
  };
  assert.equal(code(() => remoteCommand(['x'], { env: { 'A-B': '1' } })), 'INVALID_ENV');
  assert.equal(code(() => remoteCommand(['x'], { env: { '1A': '1' } })), 'INVALID_ENV');
  assert.equal(code(() => remoteCommand(['x'], { user: 'root; rm -rf /' })), 'INVALID_USER');
  assert.equal(code(() => remoteCommand(['x'], { user: '-u' })), 'INVALID_USER');
  assert.equal(code(() => remoteCommand([])), 'INVALID_COMMAND');
  assert.equal(code(() => remoteCommand('  ')), 'INVALID_COMMAND');
  assert.equal(code(() => remoteCommand(['a\0b'])), 'INVALID_COMMAND');
  assert.equal(code(() => remoteCommand(['x'], { cwd: '' })), 'INVALID_CWD');
  assert.equal(code(() => remoteCommand(['x'], { timeoutMs: 0 })), 'INVALID_TIMEOUT');
});

test('commandName names the program of a command', () => {
  assert.equal(commandName(['no-such-prog', 'x']), 'no-such-prog');
  assert.equal(commandName('no-such-prog --flag | wc'), 'no-such-prog');
  assert.equal(commandName('FOO=1 BAR=2 prog x'), 'prog');
});
