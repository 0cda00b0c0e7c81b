/**
 * Keys made with the real ssh-keygen and read back by it; the readiness probes against local
 * servers (an SSH-like banner, a silent port, a closed port); the console tail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { pathsFor } from '../../../src/config/paths.js';
import { ensureDefaultKey, generateHostKey, userKey, writeKnownHosts } from '../../../src/guest/keys.js';
import { sshBanner, tailFile, waitReady } from '../../../src/guest/ready.js';
import { freePort } from '../../../src/driver/net.js';

async function withDir(fn: (d: string) => Promise<void>) {
  const d = await mkdtemp(join(tmpdir(), 'kumo-guest-'));
  try {
    await fn(d);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
}

test('default key: made once (0600), the same for concurrent callers, readable by ssh-keygen', () =>
  withDir(async (d) => {
    const paths = pathsFor(d);
    const pairs = await Promise.all(Array.from({ length: 5 }, () => ensureDefaultKey(paths)));
    assert.equal(new Set(pairs.map((p) => p.publicKey)).size, 1);
    const st = await stat(pairs[0]!.privateKeyPath);
    assert.equal(st.mode & 0o777, 0o600);
    const derived = execFileSync('ssh-keygen', ['-y', '-f', pairs[0]!.privateKeyPath]).toString().trim();
    assert.equal(derived.split(' ').slice(0, 2).join(' '), pairs[0]!.publicKey.split(' ').slice(0, 2).join(' '));
    assert.match(pairs[0]!.publicKey, /^ssh-ed25519 /);
  }));

test('user key: the .pub must exist beside it', () =>
  withDir(async (d) => {
    const k = join(d, 'mine');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k]);
    assert.match((await userKey(k)).publicKey, /^ssh-ed25519 /);
    await rm(`${k}.pub`);
    await assert.rejects(userKey(k), (e: Error & { code?: string; hint?: string }) => e.code === 'SSH_KEY_NOT_FOUND' && /ssh-keygen -y/.test(e.hint ?? ''));
    await assert.rejects(userKey(join(d, 'none')), (e: Error & { code?: string }) => e.code === 'SSH_KEY_NOT_FOUND');
  }));

test('host key and known_hosts: ssh-keygen -F finds the key under the alias', () =>
  withDir(async (d) => {
    const hk = await generateHostKey(d, 'ed25519', 'kumo-web');
    assert.match(hk.privateKey, /BEGIN OPENSSH PRIVATE KEY/);
    const kh = join(d, 'known_hosts');
    await writeKnownHosts(kh, 'web', [hk]);
    const found = execFileSync('ssh-keygen', ['-F', 'kumo-web', '-f', kh]).toString();
    assert.ok(found.includes(hk.publicKey.split(' ')[1]!));
    assert.equal((await stat(kh)).mode & 0o777, 0o600);
  }));

test('sshBanner: true for an SSH banner, false for other talk, silence or a closed port', async () => {
  const mk = (greet?: string) =>
    new Promise<{ port: number; close: () => void }>((resolve) => {
      const s = createServer((c) => {
        if (greet) c.write(greet);
      });
      s.listen(0, '127.0.0.1', () => resolve({ port: (s.address() as { port: number }).port, close: () => s.close() }));
    });
  const ssh = await mk('SSH-2.0-OpenSSH_9.2\r\n');
  const http = await mk('HTTP/1.1 400 Bad\r\n');
  const silent = await mk();
  try {
    assert.equal(await sshBanner('127.0.0.1', ssh.port), true);
    assert.equal(await sshBanner('127.0.0.1', http.port), false);
    // a server that never speaks: the probe gives up by itself (a hang would lose the race)
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<string>((r) => (timer = setTimeout(() => r('still waiting'), 20_000)));
    assert.equal(await Promise.race([sshBanner('127.0.0.1', silent.port, 300), hang]), false);
    clearTimeout(timer);
    assert.equal(await sshBanner('127.0.0.1', await freePort()), false);
  } finally {
    ssh.close();
    http.close();
    silent.close();
  }
});

test('waitReady: a timeout names the stage and shows the console tail; a dead machine stops the wait at once', () =>
  withDir(async (d) => {
    const log = join(d, 'serial.log');
    await writeFile(log, '\x1b[2J[    1.0] Linux version 6.1\r\n[  OK  ] Reached target Basic System\r\nlast line here\r\n');
    assert.deepEqual(await tailFile(log, 2), ['[  OK  ] Reached target Basic System', 'last line here']);
    const t = { name: 'web', host: '127.0.0.1', port: await freePort(), user: 'kumo', identity: join(d, 'k'), knownHosts: join(d, 'kh'), alias: 'kumo-web' };
    const events: string[] = [];
    await assert.rejects(
      waitReady(t, { instanceId: 'i-1', serialLog: log, timeoutMs: 1200, onEvent: (e) => e.type === 'step' && events.push(`${e.label}:${e.state}`) }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'NOT_READY');
        assert.match(e.message, /stuck at: network/);
        assert.match(e.message, /\| last line here/);
        return true;
      },
    );
    assert.deepEqual(events, ['booting:start', 'booting:done', 'network:start', 'network:fail']);
    // a dead machine ends the wait at once: INSTANCE_DIED, never the 60 s time-out's NOT_READY
    await assert.rejects(waitReady(t, { instanceId: 'i-1', serialLog: log, timeoutMs: 60_000, checkAlive: async () => 'QEMU exited' }), (e: Error & { code?: string }) => e.code === 'INSTANCE_DIED');
    assert.ok((await readFile(log, 'utf8')).length > 0);
  }));
