/**
 * The QEMU driver: runs qemu-system-x86_64 directly (no daemon, no root), daemonized so the
 * machine outlives kumo, and talks to it over QMP. Status is read from the host every time:
 * the pid file must name a live process whose /proc/PID/cmdline is this instance's QEMU, and
 * QMP must answer.
 */
import { lstat, unlink } from 'node:fs/promises';
import { CommandFailedError, InstanceRunningError, KumoError, ToolMissingError } from '../../core/errors.js';
import { run, which } from '../../core/exec.js';
import { debug } from '../../core/log.js';
import { Emitter } from '../../events/events.js';
import type { KumoPaths } from '../../config/paths.js';
import type { Driver, DriverCapabilities, MachineShape, InstanceRuntime, PortForward, RuntimeStatus, SavedState, SaveStateOptions, SnapshotInfo, StartOptions, StartResult, StopOptions, TemplateHost } from '../driver.js';
import { assignPorts, freePort, portFree, PortInUseError, PORT_PICK_ATTEMPTS, repick } from '../net.js';
import { detectAccel } from '../shared/accel.js';
import { checkHostMemory } from '../shared/resources.js';
import { checkHostfwdAdd, checkHostfwdRemove, hostfwdAddCommand, hostfwdRemoveCommand, hostfwdRule } from '../shared/hostfwd.js';
import { instanceFirmware } from './firmware.js';
import { buildQemuArgv, qemuFiles, QEMU_NETDEV } from './argv.js';
import { isOurQemu, processLive, readPidFile, recordPidFile, removePidRecord } from './process.js';
import { QmpClient, QmpUnavailableError, withQmp } from './qmp.js';
import * as snapshots from './snapshots.js';
import { checkStateFile, restoreState, saveState, StateRestoreError, templateHost } from './state.js';
import { capSerialLog, rotateSerialLog } from './serial-log.js';
import { planQemuMounts, startVirtiofsds, stopVirtiofsds } from './virtiofs.js';
import type { MountSpec, MountTypeChoice, ResolvedMount } from '../../config/mounts.js';
import type { EventSink } from '../../events/events.js';
import { sleep } from '../../core/time.js';

export const QEMU_BINARY = 'qemu-system-x86_64';


async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, dir: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  let delay = 50;
  while (Date.now() < end) {
    if (!(await isOurQemu(pid, dir))) return true;
    if (signal?.aborted) return false;
    await sleep(delay);
    delay = Math.min(250, delay * 2);
  }
  return !(await isOurQemu(pid, dir));
}

export class QemuDriver implements Driver {
  readonly name = 'qemu';
  readonly capabilities: DriverCapabilities = {
    livePorts: true,
    offlineSnapshots: true,
    liveSnapshots: true,
    privateNetworks: true,
  };

  constructor(readonly binary = QEMU_BINARY) {}

  async check(_paths: KumoPaths, _driverOptions?: Record<string, unknown>, shape?: MachineShape): Promise<void> {
    if (shape) checkHostMemory(shape.memoryMiB);
    if (!(await which(this.binary))) throw new ToolMissingError(this.binary, 'qemu-system-x86');
  }

  consoleLogPath(rt: InstanceRuntime): string {
    return qemuFiles(rt.dir).serialLog;
  }

  async status(rt: InstanceRuntime): Promise<RuntimeStatus> {
    const files = qemuFiles(rt.dir);
    const pid = await readPidFile(rt.dir);
    if (pid === undefined) {
      if (await exists(files.qmpSocket)) return { state: 'crashed', detail: 'qmp.sock is left but no qemu.pid: QEMU died' };
      return { state: 'stopped' };
    }
    if (!(await isOurQemu(pid, rt.dir))) {
      return {
        state: 'crashed',
        detail: processLive(pid) ? `qemu.pid names pid ${pid}, which is another program now` : `qemu.pid names pid ${pid}, which is not running: QEMU died`,
      };
    }
    await capSerialLog(rt.dir);
    try {
      const st = await withQmp(files.qmpSocket, (c) => c.queryStatus(), 3000);
      const state = st.status === 'running' ? 'running' : st.status === 'paused' || st.status === 'suspended' ? 'paused' : st.status === 'shutdown' ? 'stopped' : 'unknown';
      return { state, pid, ...(state === 'unknown' ? { detail: `QEMU reports '${st.status}'` } : {}) };
    } catch (e) {
      return { state: 'unknown', pid, detail: `QEMU (pid ${pid}) is alive but QMP does not answer: ${(e as Error).message}` };
    }
  }

  private async removeRuntimeFiles(rt: InstanceRuntime): Promise<void> {
    const f = qemuFiles(rt.dir);
    for (const p of [f.pidFile, f.qmpSocket, f.agentSocket]) await unlink(p).catch(() => {});
    await removePidRecord(rt.dir);
    // the virtiofsd of each shared folder goes with its QEMU (also one a crash left behind)
    await stopVirtiofsds(rt.dir);
  }

  /** How each shared folder reaches the guest here (virtiofs, else 9p): driver/qemu/virtiofs.ts. */
  planMounts(paths: KumoPaths, mounts: readonly MountSpec[], o: { type: MountTypeChoice; onEvent?: EventSink }): Promise<ResolvedMount[]> {
    return planQemuMounts(paths, mounts, o);
  }

  async cleanup(rt: InstanceRuntime): Promise<void> {
    const pid = await readPidFile(rt.dir);
    if (pid !== undefined && (await isOurQemu(pid, rt.dir))) {
      throw new InstanceRunningError(rt.name);
    }
    await this.removeRuntimeFiles(rt);
  }

  async start(rt: InstanceRuntime, opts: StartOptions = {}): Promise<StartResult> {
    const em = new Emitter(opts.onEvent);
    let st = await this.status(rt);
    if (st.pid !== undefined && st.state === 'unknown' && /'inmigrate'/.test(st.detail ?? '')) {
      // A QEMU left waiting for a restore whose kumo died (kill -9 during a start): it holds no guest yet.
      em.warn(`instance '${rt.name}': a restore that never finished left QEMU (pid ${st.pid}) waiting; stopping it`);
      await this.stop(rt, { force: true });
      st = await this.status(rt);
    }
    if (st.pid !== undefined && st.state !== 'crashed') {
      throw new InstanceRunningError(rt.name, { message: `instance '${rt.name}' is already running (pid ${st.pid})` });
    }
    if (st.state === 'crashed') em.warn(`instance '${rt.name}': ${st.detail}; starting it again`);
    await this.removeRuntimeFiles(rt);
    await this.check(rt.paths);
    await rotateSerialLog(rt.dir);
    // fixed ports must be free; dynamic ones (0:80) get a host port here (net.ts assignPorts)
    const avoid = new Set<number>(rt.sshPort ? [rt.sshPort] : []);
    let ports = await assignPorts(rt.ports, avoid);
    const accel = await detectAccel(rt.paths, { want: rt.accel, qemu: this.binary });
    debug(`qemu: accelerator ${accel.accel} (${accel.reason})`);
    let sshPort = rt.sshPort;
    if (!sshPort || !(await portFree(sshPort))) sshPort = await freePort('127.0.0.1', avoid);
    avoid.add(sshPort);
    const ovmf = rt.firmware === 'uefi' ? await instanceFirmware(rt.dir) : undefined;
    if (rt.restore && !rt.restore.snapshot) await checkStateFile(rt.name, rt.restore.stateFile);
    const t0 = Date.now();
    for (let attempt = 0; ; attempt++) {
      const argv = buildQemuArgv({ ...rt, sshPort, ports }, { accel: accel.accel, ...(ovmf ? { ovmf } : {}) });
      // each attempt gets fresh daemons: one QEMU that connected and failed made them exit
      await startVirtiofsds(rt);
      const r = await run(this.binary, argv, { allowFailure: true, signal: opts.signal, timeoutMs: 60_000 });
      if (r.code === 0) break;
      await this.removeRuntimeFiles(rt);
      const err = r.stderr;
      const m = /host forwarding rule '([^']*)'/.exec(err);
      if (m) {
        const sshRule = hostfwdRule({ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: sshPort, guestPort: 22 });
        if (m[1] === sshRule && attempt < PORT_PICK_ATTEMPTS) {
          debug(`qemu: ssh port ${sshPort} was taken meanwhile; trying another`);
          sshPort = await freePort('127.0.0.1', avoid);
          avoid.add(sshPort);
          continue;
        }
        const i = ports.findIndex((f) => hostfwdRule(f) === m[1]);
        const p = ports[i];
        if (p?.dynamic && attempt < PORT_PICK_ATTEMPTS) {
          debug(`qemu: dynamic port ${p.hostPort} (guest ${p.guestPort}/${p.proto}) was taken meanwhile; picking another`);
          ports = await repick(ports, i, avoid);
          continue;
        }
        if (p) throw new PortInUseError(p.hostAddr, p.hostPort, `forward to guest port ${p.guestPort}`);
      }
      if (rt.restore?.snapshot) throw new StateRestoreError(rt.name, `QEMU could not load snapshot '${rt.restore.snapshot}': ${err.trim().split('\n').pop() ?? ''}`);
      throw new CommandFailedError(r.argv, r.code, r.signal, err, { hint: `QEMU could not start instance '${rt.name}'; run with --debug to see its command line` });
    }
    await recordPidFile(rt.dir);
    const pid = await readPidFile(rt.dir);
    let restored: StartResult['restored'];
    if (rt.restore?.snapshot) restored = { startMs: Date.now() - t0, restoreMs: 0 };
    else if (rt.restore) {
      const startMs = Date.now() - t0;
      try {
        restored = { startMs, restoreMs: await restoreState(rt, rt.restore, opts.signal) };
      } catch (e) {
        await this.removeRuntimeFiles(rt);
        throw e;
      }
    }
    return { ...(pid !== undefined ? { pid } : {}), accel: accel.accel, sshPort, ports, ...(restored ? { restored } : {}) };
  }

  /** Save the running machine's state to a file and stop it (suspend; a template's device state). */
  async saveState(rt: InstanceRuntime, stateFile: string, o: SaveStateOptions = {}): Promise<SavedState> {
    if (rt.mounts?.length)
      throw new KumoError('MOUNTS_NOT_SAVABLE', 'unsupported', `instance '${rt.name}' has shared folders, and QEMU cannot save a machine with them (virtiofs and mounted 9p block it)`, {
        hint: `stop it instead (kumo stop ${rt.name}); an instance without --mount can be suspended`,
      });
    const r = await saveState(rt, stateFile, o);
    await this.removeRuntimeFiles(rt);
    return r;
  }

  async templateHost(rt: InstanceRuntime): Promise<TemplateHost> {
    const accel = await detectAccel(rt.paths, { want: rt.accel, qemu: this.binary });
    return templateHost(this.binary, accel.accel);
  }

  async stop(rt: InstanceRuntime, opts: StopOptions = {}): Promise<void> {
    const em = new Emitter(opts.onEvent);
    const files = qemuFiles(rt.dir);
    const pid = await readPidFile(rt.dir);
    if (pid === undefined || !(await isOurQemu(pid, rt.dir))) {
      await this.removeRuntimeFiles(rt);
      return;
    }
    const timeoutMs = opts.timeoutMs ?? 60_000;
    if (!opts.force) {
      let asked = false;
      try {
        await withQmp(files.qmpSocket, (c) => c.execute('system_powerdown'), 3000);
        asked = true;
      } catch (e) {
        em.warn(`could not ask '${rt.name}' to power down: ${(e as Error).message}; forcing`);
      }
      if (asked && (await waitGone(pid, rt.dir, timeoutMs, opts.signal))) {
        await this.removeRuntimeFiles(rt);
        return;
      }
      if (asked) em.warn(`'${rt.name}' did not power down within ${Math.round(timeoutMs / 1000)} s; forcing it off`);
    }
    // Forced: QMP quit, then SIGKILL.
    try {
      const c = await QmpClient.connect(files.qmpSocket, 2000);
      try {
        await c.execute('quit', undefined, 2000).catch(() => {});
        await c.waitClosed(2000);
      } finally {
        c.close();
      }
    } catch (e) {
      if (!(e instanceof QmpUnavailableError)) debug(`qemu: quit failed: ${(e as Error).message}`);
    }
    if (!(await waitGone(pid, rt.dir, 3000))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      if (!(await waitGone(pid, rt.dir, 5000))) {
        throw new KumoError('STOP_FAILED', 'external', `QEMU (pid ${pid}) of '${rt.name}' survived SIGKILL`, { hint: 'check the process with ps; it may be stuck in the kernel' });
      }
    }
    await this.removeRuntimeFiles(rt);
  }

  async addPort(rt: InstanceRuntime, fwd: PortForward): Promise<void> {
    if (!(await portFree(fwd.hostPort, fwd.hostAddr, fwd.proto))) throw new PortInUseError(fwd.hostAddr, fwd.hostPort, `forward to guest port ${fwd.guestPort}`);
    checkHostfwdAdd(await withQmp(qemuFiles(rt.dir).qmpSocket, (c) => c.hmp(hostfwdAddCommand(QEMU_NETDEV, fwd))), fwd);
  }

  async removePort(rt: InstanceRuntime, fwd: PortForward): Promise<void> {
    checkHostfwdRemove(await withQmp(qemuFiles(rt.dir).qmpSocket, (c) => c.hmp(hostfwdRemoveCommand(QEMU_NETDEV, fwd))), fwd);
  }

  // Snapshots (src/driver/qemu/snapshots.ts): qemu-img when stopped, savevm/loadvm/delvm when running.
  createSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
    return snapshots.createSnapshot(rt, name);
  }

  listSnapshots(rt: InstanceRuntime): Promise<SnapshotInfo[]> {
    return snapshots.listSnapshots(rt);
  }

  restoreSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
    return snapshots.restoreSnapshot(rt, name);
  }

  deleteSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
    return snapshots.deleteSnapshot(rt, name);
  }
}
