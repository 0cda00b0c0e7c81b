import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../../src/core/exec.js';
import { sshArgv, scpArgv, shellQuote, remotePath, type SshTarget } from '../../../src/guest/ssh.js';
import { parseGuestPath } from '../../../src/cli/guest-path.js';

const t: SshTarget = { name: 'web', host: '127.0.0.1', port: 40022, user: 'kumo', identity: '/k/id_ed25519', knownHosts: '/i/web/known_hosts', alias: 'kumo-web' };

function opts(argv: string[]): string[] {
  return argv.flatMap((a, i) => (a === '-o' ? [argv[i + 1]!] : []));
}

test('ssh argv pins the host key and ignores the user config', () => {
  const a = sshArgv(t, 'uname -a');
  const o = opts(a);
  for (const want of ['StrictHostKeyChecking=yes', 'UserKnownHostsFile=/i/web/known_hosts', 'HostKeyAlias=kumo-web', 'BatchMode=yes', 'IdentitiesOnly=yes', 'GlobalKnownHostsFile=/dev/null'])
    assert.ok(o.includes(want), want);
  assert.deepEqual(a.slice(0, 4), ['-F', '/dev/null', '-i', '/k/id_ed25519']);
  assert.deepEqual(a.slice(-2), ['kumo@127.0.0.1', 'uname -a']);
  assert.equal(a[a.indexOf('-p') + 1], '40022');
  assert.ok(a.includes('-T'));
  assert.ok(sshArgv(t, undefined, { tty: true }).includes('-t'));
});

test('scp argv uses -P for the port and ends options before the paths', () => {
  const a = scpArgv(t, '/tmp/x', remotePath(t, '/tmp/y'), { recursive: true });
  assert.equal(a[a.indexOf('-P') + 1], '40022');
  assert.ok(a.includes('-r'));
  assert.deepEqual(a.slice(-3), ['--', '/tmp/x', 'kumo@127.0.0.1:/tmp/y']);
});

test('shellQuote: a POSIX shell gets back exactly the words', async () => {
  const words = ['echo', 'a b', "it's", '$HOME', '`id`', '"q"', '*', '', 'x;y', 'new\nline'];
  const r = await run('sh', ['-c', `printf '%s\\0' ${shellQuote(words.slice(1))}`]);
  assert.deepEqual(r.stdout.split('\0').slice(0, -1), words.slice(1));
});

test('NAME:PATH parsing for kumo cp', () => {
  assert.deepEqual(parseGuestPath('web:/tmp/x'), { name: 'web', path: '/tmp/x' });
  assert.deepEqual(parseGuestPath('web:'), { name: 'web', path: '.' });
  assert.equal(parseGuestPath('./web:/tmp'), undefined);
  assert.equal(parseGuestPath('/abs/path'), undefined);
  assert.equal(parseGuestPath('C:stuff'), undefined);
});
