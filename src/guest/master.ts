/**
 * Connection sharing: one OpenSSH master connection per running instance, reused by every exec,
 * copy, interactive ssh and readiness poll once sshd answers (a new ssh through a live master
 * costs one local round trip instead of a key exchange, ~10x faster under TCG).
 *
 * Every ssh/scp kumo runs gets `ControlMaster=auto`, `ControlPersist` and a ControlPath in a
 * private runtime folder: the first connection after authentication becomes the master (OpenSSH
 * binds the socket under a temporary name and link()s it, so of racing processes one becomes the
 * master and the others simply use their own connection: all succeed). A socket left by a dead
 * master is found stale by OpenSSH itself (ECONNREFUSED), unlinked and replaced; kumo does the
 * same before a copy (scp) and closes the master on stop and delete. When QEMU dies, the master's
 * TCP connection closes and the master exits on its own.
 *
 * The master is opened with exactly the options of an unshared connection (pinned host key,
 * StrictHostKeyChecking=yes, the instance's known_hosts, HostKeyAlias), so pinning is unchanged;
 * the socket's folder is 0700 and owned by this user, so no one else can ride the connection.
 *
 * Socket paths are limited to 108 bytes (sun_path), and OpenSSH adds a 17 character suffix while
 * binding: the folder is short ($XDG_RUNTIME_DIR/kumo, else /tmp/kumo-UID) and the socket is
 * named by a 16 hex digit hash of the instance's known_hosts path, user, host and port. A folder
 * that is not safe (not ours, group/other access, a symlink) or too long turns sharing off.
 */
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../core/exec.js';
import { debug } from '../core/log.js';
import type { SshTarget } from './target.js';

/** sun_path on Linux. */
export const SOCKET_PATH_MAX = 108;
/** What OpenSSH appends to ControlPath while it binds the socket ('.' + 16 random characters). */
const OPENSSH_TEMP_SUFFIX = 17;
/** Idle seconds before a master with no clients exits by itself. */
export const CONTROL_PERSIST_SEC = 600;

export interface RuntimeEnv {
  XDG_RUNTIME_DIR?: string | undefined;
  KUMO_SSH_SHARING?: string | undefined;
  KUMO_RUNTIME_DIR?: string | undefined;
}

/** Whether sharing is on (KUMO_SSH_SHARING=0 / no / off turns it off). */
export function sharingEnabled(env: RuntimeEnv = process.env): boolean {
  return !/^(0|no|off|false)$/i.test(env.KUMO_SSH_SHARING ?? '');
}

/** The folders that may hold control sockets, best first. */
export function runtimeDirCandidates(env: RuntimeEnv = process.env, uid = process.getuid?.() ?? 0): string[] {
  const out: string[] = [];
  if (env.KUMO_RUNTIME_DIR) out.push(env.KUMO_RUNTIME_DIR);
  if (env.XDG_RUNTIME_DIR?.startsWith('/')) out.push(join(env.XDG_RUNTIME_DIR, 'kumo'));
  out.push(`/tmp/kumo-${uid}`);
  return out;
}

/** The socket name for a target: a short hash of what makes the connection (instance, user, address). */
export function controlName(t: Pick<SshTarget, 'knownHosts' | 'user' | 'host' | 'port' | 'alias'>): string {
  return createHash('sha256').update(`${t.knownHosts}\0${t.alias}\0${t.user}\0${t.host}\0${t.port}`).digest('hex').slice(0, 16);
}

/** The ControlPath in `dir`, or undefined when it would not fit in a socket address. */
export function controlPathIn(dir: string, t: Pick<SshTarget, 'knownHosts' | 'user' | 'host' | 'port' | 'alias'>): string | undefined {
  const p = join(dir, controlName(t));
  return Buffer.byteLength(p) + OPENSSH_TEMP_SUFFIX < SOCKET_PATH_MAX ? p : undefined;
}

/** The -o options that make an ssh share the master at `controlPath`. */
export function controlOptions(controlPath: string, master: 'auto' | 'no' = 'auto'): string[] {
  return [`ControlMaster=${master}`, `ControlPath=${controlPath}`, ...(master === 'auto' ? [`ControlPersist=${CONTROL_PERSIST_SEC}`] : [])];
}

let dirCache: { key: string; dir: string | undefined } | undefined;

/** Make (0700) and check the runtime folder: ours, a real folder, no group/other access. */
async function safeDir(dir: string, uid: number): Promise<boolean> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await lstat(dir);
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
      debug(() => `ssh sharing: ${dir} is not a private folder of uid ${uid}; not used`);
      return false;
    }
    return true;
  } catch (e) {
    debug(() => `ssh sharing: cannot use ${dir}: ${(e as Error).message}`);
    return false;
  }
}

/** The runtime folder for control sockets (made on first use), or undefined when sharing is off or no safe folder exists. */
export async function runtimeDir(env: RuntimeEnv = process.env): Promise<string | undefined> {
  if (!sharingEnabled(env)) return undefined;
  const uid = process.getuid?.() ?? 0;
  const cands = runtimeDirCandidates(env, uid);
  const key = cands.join('\0');
  if (dirCache?.key === key) return dirCache.dir;
  let found: string | undefined;
  for (const d of cands) {
    // Leave room for the socket name and OpenSSH's temporary suffix.
    if (Buffer.byteLength(d) + 1 + 16 + OPENSSH_TEMP_SUFFIX >= SOCKET_PATH_MAX) continue;
    if (await safeDir(d, uid)) {
      found = d;
      break;
    }
  }
  dirCache = { key, dir: found };
  return found;
}

/** The ControlPath for a target, or undefined when sharing is off. */
export async function controlPathFor(t: SshTarget, env: RuntimeEnv = process.env): Promise<string | undefined> {
  const dir = await runtimeDir(env);
  return dir ? controlPathIn(dir, t) : undefined;
}

/** 'alive' when a master listens on the socket, 'stale' when the file is there but no one listens, 'absent'. */
export function probeSocket(path: string, ms = 1000): Promise<'alive' | 'stale' | 'absent'> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (v: 'alive' | 'stale' | 'absent') => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done('alive'), ms);
    s.once('connect', () => done('alive'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ENOENT' ? 'absent' : 'stale'));
  });
}

/** Remove a socket no master listens on (a master that died, e.g. killed). True when one was removed. */
export async function removeStaleSocket(path: string): Promise<boolean> {
  if ((await probeSocket(path)) !== 'stale') return false;
  debug(() => `ssh sharing: removing stale control socket ${path}`);
  await unlink(path).catch(() => {});
  return true;
}

/** Close the target's master connection (on stop, delete); nothing when there is none. Never throws. */
export async function closeMaster(t: SshTarget, env: RuntimeEnv = process.env): Promise<boolean> {
  const dir = await runtimeDir(env).catch(() => undefined);
  const path = dir ? controlPathIn(dir, t) : undefined;
  return path ? closeMasterAt(path) : false;
}

/** Close the master listening at `path` (ssh -O exit), and remove the socket. */
export async function closeMasterAt(path: string): Promise<boolean> {
  const st = await probeSocket(path);
  if (st === 'absent') return false;
  if (st === 'alive') {
    await run('ssh', ['-F', '/dev/null', '-o', `ControlPath=${path}`, '-O', 'exit', 'kumo-master'], { allowFailure: true, timeoutMs: 5000 }).catch(() => undefined);
  }
  await unlink(path).catch(() => {});
  return true;
}
