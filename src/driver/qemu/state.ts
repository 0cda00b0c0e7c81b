/**
 * Saved machine states for the QEMU driver: save a running machine to a file and stop it (`kumo
 * suspend`, and the device state of a warm template), and restore one at start (`-incoming
 * defer`, then `migrate-incoming`). QEMU 7.2 takes `exec:` migration URIs (not `file:`), so the
 * stream goes through `cat` with the path quoted for the shell QEMU runs it with.
 *
 * A template's RAM stays in its shared memory file (`x-ignore-shared`): the state file then holds
 * only device state (a few hundred KB) and the clone maps the RAM file private.
 */
import { open, rename, stat, unlink } from 'node:fs/promises';
import { KumoError } from '../../core/errors.js';
import { run } from '../../core/exec.js';
import { fsyncDir } from '../../core/fs.js';
import { debug } from '../../core/log.js';
import { sleep } from '../../core/time.js';
import { shellQuote } from '../../core/text.js';
import { dirname } from 'node:path';
import type { InstanceRuntime, RestoreSpec, SavedState, SaveStateOptions, TemplateHost } from '../driver.js';
import { qemuFiles } from './argv.js';
import { isOurQemu, readPidFile } from './process.js';
import { QmpClient, withQmp } from './qmp.js';

export class StateSaveError extends KumoError {
  constructor(name: string, why: string) {
    super('STATE_SAVE_FAILED', 'external', `could not save the state of '${name}': ${why}`, {
      hint: 'the machine was left running; check the free space in KUMO_HOME (df -h) and try again',
    });
  }
}

export class StateRestoreError extends KumoError {
  constructor(name: string, why: string, hint?: string) {
    super('STATE_RESTORE_FAILED', 'external', `could not restore the saved state of '${name}': ${why}`, {
      hint: hint ?? 'the state file may be truncated or made by another QEMU; kumo boots the machine instead',
    });
  }
}

/** QEMU's migration stream starts with 'QEVM' and version 3. */
const QEVM_MAGIC = 0x5145564d;

/** Check a state file looks like a QEMU migration stream before a QEMU is started on it. */
export async function checkStateFile(name: string, path: string): Promise<number> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new StateRestoreError(name, `the state file ${path} is missing`);
  }
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 0);
    if (bytesRead < 8 || b.readUInt32BE(0) !== QEVM_MAGIC || b.readUInt32BE(4) !== 3) throw new StateRestoreError(name, `${path} is not a QEMU machine state (bad header)`);
  } finally {
    await fh.close();
  }
  return size;
}

interface MigrateStatus {
  status?: string;
  'error-desc'?: string;
}

async function waitMigration(c: QmpClient, timeoutMs: number, signal?: AbortSignal): Promise<MigrateStatus> {
  const end = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    const st = await c.execute<MigrateStatus>('query-migrate');
    if (st.status === 'completed' || st.status === 'failed' || st.status === 'cancelled') return st;
    if (signal?.aborted || Date.now() > end) {
      await c.execute('migrate_cancel').catch(() => {});
      return { status: 'cancelled', 'error-desc': signal?.aborted ? 'interrupted' : `not done within ${Math.round(timeoutMs / 1000)} s` };
    }
    await sleep(delay);
    delay = Math.min(100, delay * 2);
  }
}

/** The machine type QEMU's `q35` alias stands for (pc-q35-7.2 on Debian 12), asked from a running QEMU. */
async function resolvedMachine(c: QmpClient, rt: InstanceRuntime): Promise<string> {
  if (rt.machine) return rt.machine;
  const ms = await c.execute<{ name: string; alias?: string }[]>('query-machines');
  return ms.find((m) => m.alias === 'q35')?.name ?? 'q35';
}

/** Save the running machine to `stateFile` (temp file, fsync, rename) and quit its QEMU. */
export async function saveState(rt: InstanceRuntime, stateFile: string, o: SaveStateOptions = {}): Promise<SavedState> {
  const files = qemuFiles(rt.dir);
  const pid = await readPidFile(rt.dir);
  if (pid === undefined || !(await isOurQemu(pid, rt.dir))) throw new StateSaveError(rt.name, 'it is not running');
  const tmp = `${stateFile}.tmp-${process.pid}`;
  const c = await QmpClient.connect(files.qmpSocket, 5000);
  let machine: string;
  let ms: number;
  try {
    machine = await resolvedMachine(c, rt);
    await c.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: !!o.ignoreShared }] });
    const st0 = await c.queryStatus();
    const t0 = Date.now();
    if (st0.running) await c.execute('stop');
    await c.execute('migrate', { uri: `exec:cat > ${shellQuote([tmp])}` /* QEMU runs exec: URIs with sh -c */ });
    const st = await waitMigration(c, 10 * 60_000, o.signal);
    ms = Date.now() - t0;
    if (st.status !== 'completed') {
      await unlink(tmp).catch(() => {});
      if (st0.running) await c.execute('cont').catch(() => {});
      throw new StateSaveError(rt.name, st['error-desc'] ?? `the migration ended '${st.status}'`);
    }
    // The stream is complete; make it durable before the machine goes.
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, stateFile);
    await fsyncDir(dirname(stateFile));
    await c.execute('quit', undefined, 3000).catch(() => {});
    await c.waitClosed(5000);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e instanceof KumoError ? e : new StateSaveError(rt.name, (e as Error).message);
  } finally {
    c.close();
  }
  // QEMU exits after quit; the caller's stop path removes pid file and sockets.
  for (let i = 0; i < 100 && (await isOurQemu(pid, rt.dir)); i++) await sleep(50);
  if (await isOurQemu(pid, rt.dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  return { bytes: (await stat(stateFile)).size, ms, machine };
}

/**
 * Restore `spec` into the QEMU that was just started with `-incoming defer`: set the capability,
 * stream the file in, wait until the guest runs. On failure QEMU exits (or is killed here) and a
 * StateRestoreError says why.
 */
export async function restoreState(rt: InstanceRuntime, spec: RestoreSpec, signal?: AbortSignal): Promise<number> {
  const files = qemuFiles(rt.dir);
  const t0 = Date.now();
  const pid = await readPidFile(rt.dir);
  try {
    await withQmp(
      files.qmpSocket,
      async (c) => {
        await c.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: spec.ignoreShared }] });
        await c.execute('migrate-incoming', { uri: `exec:cat ${shellQuote([spec.stateFile])}` });
        let delay = 5;
        for (;;) {
          const st = await c.queryStatus();
          if (st.running) return;
          if (st.status !== 'inmigrate' && st.status !== 'prelaunch' && st.status !== 'paused' && st.status !== 'restore-vm') throw new StateRestoreError(rt.name, `QEMU reports '${st.status}'`);
          if (st.status === 'paused' || st.status === 'prelaunch') {
            const m = await c.execute<MigrateStatus>('query-migrate');
            if (m.status === 'completed') {
              await c.execute('cont');
              continue;
            }
            if (m.status === 'failed') throw new StateRestoreError(rt.name, m['error-desc'] ?? 'the restore failed');
          }
          if (signal?.aborted) throw new StateRestoreError(rt.name, 'interrupted');
          if (Date.now() - t0 > 120_000) throw new StateRestoreError(rt.name, 'not done within 120 s');
          await sleep(delay);
          delay = Math.min(50, delay * 2);
        }
      },
      5000,
    );
  } catch (e) {
    if (pid !== undefined && (await isOurQemu(pid, rt.dir))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (e instanceof StateRestoreError) throw e;
    // QMP went away: QEMU exited because the stream did not load.
    throw new StateRestoreError(rt.name, `QEMU exited while loading it (${(e as Error).message})`);
  }
  debug(`qemu: restored ${rt.name} from ${spec.stateFile} in ${Date.now() - t0} ms`);
  return Date.now() - t0;
}

let hostCache: Promise<{ version: string; machine: string }> | undefined;

/** The QEMU binary's version and what its `q35` alias stands for (asked once per process). */
export function qemuHost(binary: string): Promise<{ version: string; machine: string }> {
  hostCache ??= (async () => {
    const v = await run(binary, ['--version']);
    const version = /version\s+(\S+)/.exec(v.stdout)?.[1] ?? v.stdout.split('\n')[0]!.trim();
    const m = await run(binary, ['-machine', 'help']);
    const machine = /^q35\s.*\(alias of ([^)]+)\)/m.exec(m.stdout)?.[1] ?? 'q35';
    return { version, machine };
  })();
  hostCache.catch(() => (hostCache = undefined));
  return hostCache;
}

export async function templateHost(binary: string, accel: string): Promise<TemplateHost> {
  const h = await qemuHost(binary);
  return { hypervisor: 'qemu', version: h.version, machine: h.machine, accel };
}
