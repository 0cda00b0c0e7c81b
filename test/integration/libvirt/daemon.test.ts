/**
 * The test libvirtd itself: reached only through a unix socket in a root-only 0700 folder (no TCP
 * listener), and gone when the test process that started it dies, even by kill -9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { libvirtdUnavailable, STATE } from '../../helpers/libvirtd.js';
import { pidAlive } from '../../../src/core/exec.js';
import { sleep } from '../../../src/core/time.js';

const skip = libvirtdUnavailable();
const HELPER = new URL('../../helpers/libvirtd.js', import.meta.url).href;

/** Inodes of the TCP sockets (v4 and v6) in LISTEN state. */
function listeningTcpInodes(): Set<string> {
  const out = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(f)) continue;
    for (const l of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const c = l.trim().split(/\s+/);
      if (c[3] === '0A') out.add(c[9]!);
    }
  }
  return out;
}

function socketInodes(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  return readdirSync(dir).flatMap((fd) => {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(join(dir, fd)));
      return m ? [m[1]!] : [];
    } catch {
      return [];
    }
  });
}

test('the test libvirtd: a private unix socket only, and it does not outlive a test process killed with -9', { skip, timeout: 180_000 }, async () => {
  // A test process that starts (or joins) the daemon and then hangs until it is killed.
  const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(HELPER)}); const lv = await m.startLibvirtd(); console.log(JSON.stringify({ uri: lv.uri })); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let o = '';
    child.stdout.on('data', (x) => {
      o += x;
      if (o.includes('\n')) resolve(o.trim());
    });
    child.on('exit', (code) => reject(new Error(`the test process ended (${code}) before the daemon answered`)));
  });
  const { uri } = JSON.parse(line) as { uri: string };
  const st = JSON.parse(readFileSync(join(STATE, 'daemon.json'), 'utf8')) as { pid: number; uri: string };
  assert.equal(st.uri, uri);
  const sock = /[?&]socket=([^&]+)/.exec(uri)?.[1];
  assert.ok(sock && uri.startsWith('qemu+unix:///system?'), uri);
  assert.ok(statSync(sock).isSocket());
  // Every folder above the socket up to the state folder is root's and closed to others.
  for (const d of [join(sock, '..'), STATE]) {
    const s = statSync(d);
    assert.equal(s.uid, 0, d);
    assert.equal(s.mode & 0o077, 0, `${d} is mode ${(s.mode & 0o777).toString(8)}`);
  }
  // No TCP listener in the daemon.
  const listening = listeningTcpInodes();
  assert.deepEqual(socketInodes(st.pid).filter((i) => listening.has(i)), [], 'libvirtd listens on no TCP port');

  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // The watchdog notices within seconds; bounded wait, no timing claim.
  const userFile = join(STATE, 'users', String(child.pid));
  const others = () => readdirSync(join(STATE, 'users')).filter((p) => pidAlive(Number(p)) && Number(p) !== child.pid);
  const end = Date.now() + 120_000;
  while (Date.now() < end) {
    if (!pidAlive(st.pid)) break;
    if (!existsSync(userFile) && others().length) break; // other test processes use it: it stays for them
    await sleep(250);
  }
  assert.equal(existsSync(userFile), false, 'the dead test process is no longer a user of the daemon');
  if (!others().length) {
    assert.equal(pidAlive(st.pid), false, 'the daemon is stopped once its last user died');
    assert.equal(existsSync(sock), false, 'its socket is gone');
  }
});
