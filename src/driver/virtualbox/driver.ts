/**
 * The VirtualBox driver: the same instances as the QEMU and libvirt drivers, run as VirtualBox VMs
 * through VBoxManage (the commands in ./vboxmanage.ts, as CernVM-Launch drives them).
 *
 * - The VM is made at the first start: `createvm --basefolder INSTANCE/vbox` (so its files live in
 *   the instance folder and delete leaves nothing), named `kumo-INSTANCE-ID` with the instance's
 *   vmgenid as its UUID; SATA for the disk, IDE for the seed; a NAT NIC (virtio, host DNS
 *   resolver) with ssh and the user's ports forwarded from 127.0.0.1; the serial console to the
 *   instance's serial.log; no VRDE unless `driverOptions.vrdePort`, and then on 127.0.0.1 only.
 *   INSTANCE/vbox.json records the VM (name, UUID, base medium) once it is made; every later call
 *   names the VM by that UUID and checks its settings file lies in this instance folder, so a VM
 *   kumo did not make is never touched.
 * - Disk: the image under the instance's overlay converted once to a multiattach VDI
 *   (./media.ts); VirtualBox gives the VM its own differencing image in INSTANCE/vbox (grown to
 *   the instance's disk size).
 * - A start that fails after the VM was made for it removes the VM again (nothing half-made).
 * - Stop: `controlvm acpipowerbutton`, `poweroff` after the timeout. Suspend: `savestate`
 *   (VirtualBox keeps the state; the next `startvm` resumes). Ports: `controlvm natpf1` live,
 *   `modifyvm --natpf1` when stopped. Snapshots: `snapshot take/restore/delete`.
 * - Status from `showvminfo --machinereadable` (VMState), never from a stored field. A VM
 *   unregistered behind kumo's back reads as stopped with a de-sync hint, and the next start makes
 *   it again (repair); a kumo VM of this home whose instance folder is gone is an orphan.
 * - Delete (`purge`): detach the disk (VirtualBox drops the differencing image) and the seed,
 *   `unregistervm --delete`, remove INSTANCE/vbox; the base medium stays.
 */
import { rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { KumoPaths } from '../../config/paths.js';
import { instanceFilesIn } from '../../config/instance-files.js';
import { ConflictError, InstanceRunningError, InvalidInputError, isKumoError, KumoError, NotFoundError, TimeoutError } from '../../core/errors.js';
import { ensurePrivateDir, exists, readJson, writeJsonAtomic } from '../../core/fs.js';
import { debug } from '../../core/log.js';
import { sleep } from '../../core/time.js';
import { Emitter } from '../../events/events.js';
import type { Driver, DriverCapabilities, InstanceRuntime, MachineShape, OrphanMachine, PortForward, RuntimeStatus, SavedState, SaveStateOptions, SnapshotInfo, StartOptions, StartResult, StopOptions } from '../driver.js';
import { assignPorts, freePort, portFree, PortInUseError } from '../net.js';
import { checkHostMemory } from '../shared/resources.js';
import { ensureBaseMedium } from './media.js';
import { checkOstype, checkVrdePort } from './options.js';
import { VBox } from './vbox.js';
import {
  acpiPowerButtonArgv,
  attachDiskArgv,
  attachSeedArgv,
  childrenOf,
  closeMediumArgv,
  cloneVmArgv,
  createVmArgv,
  detachArgv,
  discardStateArgv,
  listHddsArgv,
  listVmsArgv,
  modifyVmArgv,
  natpfAddArgv,
  natpfDeleteArgv,
  natpfLiveAddArgv,
  natpfLiveDeleteArgv,
  natRule,
  parseListHdds,
  parseListVms,
  parseShowVmInfo,
  powerOffArgv,
  resizeArgv,
  ruleName,
  saveStateArgv,
  showVmInfoArgv,
  snapshotDeleteArgv,
  snapshotRestoreArgv,
  snapshotTakeArgv,
  sshForward,
  SSH_RULE,
  startVmArgv,
  storageCtlArgv,
  unregisterVmArgv,
  versionArgv,
  vmName,
  VM_PREFIX,
  type VmConfig,
  type VmInfo,
} from './vboxmanage.js';

/** What INSTANCE/vbox.json keeps: the VM kumo made for the instance. */
export interface VBoxRecord {
  name: string;
  uuid: string;
  baseFolder: string;
  /** The instance's dir and home, so a VM found in `list vms` can be told to be this home's. */
  dir: string;
  home: string;
  base?: { vdi: string; source: string };
}

/** The VirtualBox settings of an instance (driverOptions). */
export interface VBoxOptions {
  ostype: string;
  vramMiB: number;
  /** VRDE (remote display) on 127.0.0.1:PORT; off when absent. */
  vrdePort?: number;
}

export function vboxOptions(d: Record<string, unknown> | undefined): VBoxOptions {
  const o: VBoxOptions = { ostype: 'Linux_64', vramMiB: 16 };
  if (d?.ostype !== undefined) o.ostype = checkOstype(d.ostype);
  if (d?.vrdePort !== undefined) o.vrdePort = checkVrdePort(d.vrdePort);
  return o;
}

/** The instance's id, from its record (the VM name carries it). */
async function instanceIdOf(rt: InstanceRuntime): Promise<string> {
  try {
    const rec = (await readJson(instanceFilesIn(rt.dir).record)) as { instanceId?: unknown };
    if (typeof rec.instanceId === 'string' && rec.instanceId) return rec.instanceId;
  } catch {
    /* below */
  }
  throw new NotFoundError('VBOX_RECORD_UNREADABLE', `instance '${rt.name}' has no readable instance-id in ${instanceFilesIn(rt.dir).record}`, { hint: `delete the instance (kumo delete ${rt.name}) and launch it again` });
}

export async function readVBoxRecord(dir: string): Promise<VBoxRecord | undefined> {
  try {
    return (await readJson(instanceFilesIn(dir).vboxRecord)) as VBoxRecord;
  } catch {
    return undefined;
  }
}

/** Whether the VM's settings file lies inside `dir` (a VM kumo made for this instance folder). */
export function ownedVm(info: Pick<VmInfo, 'name' | 'cfgFile'>, dir: string): boolean {
  if (!info.name.startsWith(VM_PREFIX) || !info.cfgFile) return false;
  return resolve(info.cfgFile).startsWith(resolve(dir) + sep);
}

function mapState(s: string): RuntimeStatus['state'] {
  switch (s) {
    case 'running':
    case 'stopping':
    case 'livesnapshotting':
    case 'onlinesnapshotting':
    case 'teleporting':
      return 'running';
    case 'paused':
      return 'paused';
    case 'poweroff':
    case 'saved':
    case 'aborted-saved':
      return 'stopped';
    case 'aborted':
    case 'gurumeditation':
      return 'crashed';
    default:
      return 'unknown';
  }
}

const LIVE = new Set(['running', 'paused', 'stopping', 'livesnapshotting', 'onlinesnapshotting', 'starting', 'restoring', 'saving', 'teleporting', 'gurumeditation', 'stuck']);

export class VirtualBoxDriver implements Driver {
  readonly name = 'virtualbox';
  readonly capabilities: DriverCapabilities = { livePorts: true, offlineSnapshots: true, liveSnapshots: true };

  private vbox(signal?: AbortSignal): VBox {
    return new VBox(signal ? { signal } : {});
  }

  async check(_paths: KumoPaths, driverOptions?: Record<string, unknown>, shape?: MachineShape): Promise<void> {
    vboxOptions(driverOptions);
    if (shape) checkHostMemory(shape.memoryMiB);
    await this.vbox().call(versionArgv(), 'VBoxManage --version');
  }

  resolveOptions(driverOptions: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
    vboxOptions(driverOptions);
    return driverOptions;
  }

  consoleLogPath(rt: InstanceRuntime): string {
    return instanceFilesIn(rt.dir).serialLog;
  }

  /** The VM's facts when it exists and is this instance's; undefined when it is gone. */
  private async info(v: VBox, rec: VBoxRecord, rt: InstanceRuntime): Promise<VmInfo | undefined> {
    const r = await v.raw(showVmInfoArgv(rec.uuid));
    if (r.code !== 0) {
      if (/Could not find a registered machine|VBOX_E_OBJECT_NOT_FOUND/.test(r.stderr)) return undefined;
      const { vboxError } = await import('./vboxmanage.js');
      throw vboxError(showVmInfoArgv(rec.uuid), r.stderr, `VBoxManage showvminfo (instance '${rt.name}')`);
    }
    const info = parseShowVmInfo(r.stdout);
    if (!ownedVm(info, rt.dir))
      throw new ConflictError('VBOX_VM_TAKEN', `VirtualBox machine ${rec.uuid} ('${info.name}') is not instance '${rt.name}''s (its settings are in ${info.cfgFile ?? '?'})`, {
        hint: 'kumo leaves machines it did not make alone; remove that machine yourself if you no longer need it',
        details: { uuid: rec.uuid, name: info.name },
      });
    return info;
  }

  async status(rt: InstanceRuntime): Promise<RuntimeStatus> {
    const rec = await readVBoxRecord(rt.dir);
    if (!rec) return { state: 'stopped' };
    let info: VmInfo | undefined;
    try {
      info = await this.info(this.vbox(), rec, rt);
    } catch (e) {
      if (isKumoError(e)) return { state: 'unknown', detail: e.message };
      throw e;
    }
    if (!info)
      return {
        state: 'stopped',
        detail: `VirtualBox machine '${rec.name}' (${rec.uuid}) is not registered (removed behind kumo's back?)`,
        desync: `'kumo repair' or 'kumo start ${rt.name}' makes it again (a fresh disk on the image); 'kumo delete ${rt.name}' removes the instance`,
      };
    const state = mapState(info.state);
    const r: RuntimeStatus = { state, accel: 'virtualbox' };
    if (info.state === 'saved') r.detail = 'suspended (VirtualBox saved state): the next start resumes it';
    else if (state === 'crashed' || state === 'unknown') r.detail = `VirtualBox reports VMState '${info.state}'`;
    return r;
  }

  /** Make the VM for the instance (createvm, storagectl, modifyvm, disk); removed again when a step fails. */
  private async createVm(v: VBox, rt: InstanceRuntime, o: StartOptions): Promise<VBoxRecord> {
    const f = instanceFilesIn(rt.dir);
    const id = await instanceIdOf(rt);
    const name = vmName(id);
    const uuid = rt.vmgenid ?? (await import('../shared/mac.js')).vmgenidFor(id);
    // A VM of this name already registered (a kumo crash between createvm and vbox.json) is adopted only when it is this folder's.
    const clash = parseListVms(await v.call(listVmsArgv(), 'VBoxManage list vms')).find((x) => x.name === name || x.uuid === uuid);
    if (clash) {
      const info = parseShowVmInfo(await v.call(showVmInfoArgv(clash.uuid)));
      if (!ownedVm(info, rt.dir)) throw new ConflictError('VBOX_VM_TAKEN', `VirtualBox already has a machine '${clash.name}' (${clash.uuid}) that is not instance '${rt.name}''s`, { hint: 'remove that machine yourself if you no longer need it, or delete and launch the instance again' });
      await this.destroyVm(v, clash.uuid);
    }
    const base = await ensureBaseMedium(rt.paths, v, rt.disk.path, o.signal ? { signal: o.signal } : {});
    await ensurePrivateDir(f.vboxDir);
    const rec: VBoxRecord = { name, uuid, baseFolder: f.vboxDir, dir: rt.dir, home: rt.paths.home, base: { vdi: base.vdi, source: base.source } };
    await v.call(createVmArgv({ name, uuid, baseFolder: f.vboxDir, ostype: vboxOptions(rt.driverOptions).ostype }), 'VBoxManage createvm');
    try {
      await v.call(storageCtlArgv(uuid, 'sata'));
      await v.call(storageCtlArgv(uuid, 'ide'));
      await v.call(modifyVmArgv(uuid, this.config(rt, rec)));
      await v.call(attachDiskArgv(uuid, base.vdi), 'attach the disk');
      if (base.wantBytes > base.baseBytes) {
        const info = parseShowVmInfo(await v.call(showVmInfoArgv(uuid)));
        if (info.disk) await v.call(resizeArgv(info.disk.uuid ?? info.disk.path, Math.ceil(base.wantBytes / (1024 * 1024))), 'grow the disk');
      }
      await writeJsonAtomic(f.vboxRecord, rec, 0o600);
    } catch (e) {
      await this.destroyVm(v, uuid).catch((x: Error) => debug(`virtualbox: rollback of ${name}: ${x.message}`));
      throw e;
    }
    return rec;
  }

  private config(rt: InstanceRuntime, rec: Pick<VBoxRecord, 'name' | 'uuid' | 'baseFolder'>): VmConfig {
    const o = vboxOptions(rt.driverOptions);
    return {
      name: rec.name,
      uuid: rec.uuid,
      baseFolder: rec.baseFolder,
      ostype: o.ostype,
      cpus: rt.cpus,
      memoryMiB: rt.memoryMiB,
      vramMiB: o.vramMiB,
      firmware: rt.firmware ?? 'bios',
      mac: rt.mac,
      serialLog: instanceFilesIn(rt.dir).serialLog,
      ...(o.vrdePort ? { vrde: { port: o.vrdePort } } : {}),
    };
  }

  /** Detach the disk (VirtualBox drops its differencing image; the base stays) and the seed, unregister and delete the VM. */
  private async destroyVm(v: VBox, uuid: string): Promise<void> {
    const r = await v.raw(showVmInfoArgv(uuid));
    if (r.code !== 0) return;
    const info = parseShowVmInfo(r.stdout);
    if (LIVE.has(info.state)) await v.raw(powerOffArgv(uuid));
    if (info.state === 'saved') await v.raw(discardStateArgv(uuid));
    if (info.disk) await v.call(detachArgv(uuid, 'sata'), 'detach the disk');
    if (info.dvd) {
      await v.call(detachArgv(uuid, 'ide'), 'detach the seed');
      await v.raw(closeMediumArgv('dvd', info.dvd));
    }
    await v.call(unregisterVmArgv(uuid), 'VBoxManage unregistervm');
  }

  async start(rt: InstanceRuntime, opts: StartOptions = {}): Promise<StartResult> {
    const v = this.vbox(opts.signal);
    let rec = await readVBoxRecord(rt.dir);
    let info = rec ? await this.info(v, rec, rt) : undefined;
    let fresh = false;
    if (!rec || !info) {
      if (rec) new Emitter(opts.onEvent).warn(`VirtualBox machine '${rec.name}' of '${rt.name}' was gone; making it again`);
      rec = await this.createVm(v, rt, opts);
      info = parseShowVmInfo(await v.call(showVmInfoArgv(rec.uuid)));
      fresh = true;
    }
    if (LIVE.has(info.state)) throw new ConflictError('VBOX_ALREADY_RUNNING', `VirtualBox machine '${rec.name}' of '${rt.name}' is already ${info.state}`, { hint: `stop it first: kumo stop ${rt.name}` });
    const resuming = info.state === 'saved';
    let sshPort = rt.sshPort;
    let ports = rt.ports;
    try {
      if (!resuming) {
        if (!fresh) await v.call(modifyVmArgv(rec.uuid, this.config(rt, rec)));
        if (rt.seed) await v.call(attachSeedArgv(rec.uuid, rt.seed.path), 'attach the seed');
        for (const fw of info.forwards) if (fw.name.startsWith('kumo-')) await v.call(natpfDeleteArgv(rec.uuid, fw.name));
        const avoid = new Set<number>();
        if (!sshPort || !(await portFree(sshPort))) sshPort = await freePort('127.0.0.1', avoid);
        avoid.add(sshPort);
        ports = await assignPorts(rt.ports, avoid);
        const rules = [natRule(SSH_RULE, sshForward(sshPort)), ...ports.map((p) => natRule(ruleName(p), p))];
        await v.call(natpfAddArgv(rec.uuid, rules), 'forward ports');
      } else {
        sshPort = info.forwards.find((x) => x.name === SSH_RULE)?.hostPort ?? sshPort;
      }
      await v.call(startVmArgv(rec.uuid), 'VBoxManage startvm', { timeoutMs: 5 * 60_000 });
    } catch (e) {
      if (fresh) await this.destroyVm(v, rec.uuid).then(() => rm(instanceFilesIn(rt.dir).vboxRecord, { force: true })).catch((x: Error) => debug(`virtualbox: rollback: ${x.message}`));
      throw e;
    }
    return { accel: 'virtualbox', sshPort, ports, ...(resuming ? { restored: { startMs: 0, restoreMs: 0 } } : {}) };
  }

  async stop(rt: InstanceRuntime, opts: StopOptions = {}): Promise<void> {
    const rec = await readVBoxRecord(rt.dir);
    if (!rec) return;
    const v = this.vbox(opts.signal);
    const em = new Emitter(opts.onEvent);
    const state = async () => (await this.info(v, rec, rt))?.state;
    const s0 = await state();
    if (!s0 || !LIVE.has(s0)) return;
    if (!opts.force) {
      const r = await v.raw(acpiPowerButtonArgv(rec.uuid));
      if (r.code === 0) {
        const end = Date.now() + (opts.timeoutMs ?? 60_000);
        let delay = 100;
        while (Date.now() < end && !opts.signal?.aborted) {
          const s = await state();
          if (!s || !LIVE.has(s)) return;
          await sleep(delay);
          delay = Math.min(1000, delay * 2);
        }
        em.warn(`'${rt.name}' did not power down within ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s; forcing it off`);
      } else em.warn(`could not press the ACPI power button of '${rt.name}': ${r.stderr.trim()}; forcing it off`);
    }
    await v.call(powerOffArgv(rec.uuid), 'VBoxManage controlvm poweroff');
    const end = Date.now() + 30_000;
    for (;;) {
      const s = await state();
      if (!s || !LIVE.has(s)) return;
      if (Date.now() > end) throw new TimeoutError('STOP_FAILED', `VirtualBox machine '${rec.name}' of '${rt.name}' is still ${s} after poweroff`, { hint: `check it with 'VBoxManage showvminfo ${rec.uuid}'` });
      await sleep(200);
    }
  }

  /** Nothing to remove after a stop: the VM stays registered while the instance exists. */
  async cleanup(_rt: InstanceRuntime): Promise<void> {}

  /** Delete: drop the differencing image and the VM with its files; never the base medium. */
  async purge(rt: InstanceRuntime): Promise<void> {
    const rec = await readVBoxRecord(rt.dir);
    const f = instanceFilesIn(rt.dir);
    if (rec) {
      const v = this.vbox();
      let info: VmInfo | undefined;
      try {
        info = await this.info(v, rec, rt);
      } catch (e) {
        if (!(isKumoError(e) && e.code === 'VBOX_VM_TAKEN')) throw e;
      }
      if (info) {
        if (LIVE.has(info.state)) throw new InstanceRunningError(rt.name);
        await this.destroyVm(v, rec.uuid);
      }
    }
    await rm(f.vboxDir, { recursive: true, force: true });
    await rm(f.vboxRecord, { force: true });
  }

  private async running(rt: InstanceRuntime): Promise<{ v: VBox; rec: VBoxRecord; info: VmInfo | undefined }> {
    const rec = await readVBoxRecord(rt.dir);
    const v = this.vbox();
    return { v, rec: rec!, info: rec ? await this.info(v, rec, rt) : undefined };
  }

  async addPort(rt: InstanceRuntime, fwd: PortForward): Promise<void> {
    const { v, rec, info } = await this.running(rt);
    if (!info) return; // not made yet: the next start forwards it (instance.json keeps it)
    if (!(await portFree(fwd.hostPort, fwd.hostAddr, fwd.proto))) throw new PortInUseError(fwd.hostAddr, fwd.hostPort, `forward to guest port ${fwd.guestPort}`);
    const rule = natRule(ruleName(fwd), fwd);
    await v.call(LIVE.has(info.state) ? natpfLiveAddArgv(rec.uuid, rule) : natpfAddArgv(rec.uuid, [rule]), 'add a port forward');
  }

  async removePort(rt: InstanceRuntime, fwd: PortForward): Promise<void> {
    const { v, rec, info } = await this.running(rt);
    if (!info || !info.forwards.some((x) => x.name === ruleName(fwd))) return;
    await v.call(LIVE.has(info.state) ? natpfLiveDeleteArgv(rec.uuid, ruleName(fwd)) : natpfDeleteArgv(rec.uuid, ruleName(fwd)), 'remove a port forward');
  }

  private async made(rt: InstanceRuntime, what: string): Promise<{ v: VBox; rec: VBoxRecord; info: VmInfo }> {
    const { v, rec, info } = await this.running(rt);
    if (!info) throw new NotFoundError('VBOX_VM_NOT_FOUND', `instance '${rt.name}' has no VirtualBox machine yet, so it cannot ${what}`, { hint: `start it once first: kumo start ${rt.name}` });
    return { v, rec, info };
  }

  async createSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
    const { v, rec, info } = await this.made(rt, 'take a snapshot');
    if (info.snapshots.some((s) => s.name === name)) throw new ConflictError('SNAPSHOT_EXISTS', `instance '${rt.name}' already has a snapshot '${name}'`, { hint: 'choose another name, or delete that one first' });
    await v.call(snapshotTakeArgv(rec.uuid, name, LIVE.has(info.state)), 'VBoxManage snapshot take', { timeoutMs: 30 * 60_000 });
  }

  async listSnapshots(rt: InstanceRuntime): Promise<SnapshotInfo[]> {
    const { info } = await this.running(rt);
    return (info?.snapshots ?? []).map((s) => ({ name: s.name }));
  }

  async restoreSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
    const { v, rec, info } = await this.made(rt, 'restore a snapshot');
    this.needSnapshot(rt, info, name);
    // VirtualBox restores only a machine that is off: a running one is powered off, restored and
    // started again (from the snapshot's saved memory when it was taken live, else it boots).
    const live = LIVE.has(info.state);
    if (live) await this.stop(rt, { force: true });
    await v.call(snapshotRestoreArgv(rec.uuid, name), 'VBoxManage snapshot restore', { timeoutMs: 30 * 60_000 });
    if (live) await v.call(startVmArgv(rec.uuid), 'VBoxManage startvm', { timeoutMs: 5 * 60_000 });
  }

  async deleteSnapshot(rt: InstanceRuntime, name: string): Promise<void> {
    const { v, rec, info } = await this.made(rt, 'delete a snapshot');
    this.needSnapshot(rt, info, name);
    await v.call(snapshotDeleteArgv(rec.uuid, name), 'VBoxManage snapshot delete', { timeoutMs: 30 * 60_000 });
  }

  private needSnapshot(rt: InstanceRuntime, info: VmInfo, name: string): void {
    if (!info.snapshots.some((s) => s.name === name))
      throw new NotFoundError('SNAPSHOT_NOT_FOUND', `instance '${rt.name}' has no snapshot '${name}'`, { hint: `list them: kumo snapshot list ${rt.name}`, details: { snapshots: info.snapshots.map((s) => s.name) } });
  }

  /** Suspend: `controlvm savestate`; VirtualBox keeps the state and the next `startvm` resumes it (`stateFile` is not used). */
  async saveState(rt: InstanceRuntime, _stateFile: string, o: SaveStateOptions = {}): Promise<SavedState> {
    const rec = await readVBoxRecord(rt.dir);
    if (!rec) throw new NotFoundError('VBOX_VM_NOT_FOUND', `instance '${rt.name}' has no VirtualBox machine`, { hint: `start it first: kumo start ${rt.name}` });
    const t0 = Date.now();
    const r = await this.vbox(o.signal).raw(saveStateArgv(rec.uuid), { timeoutMs: 10 * 60_000 });
    if (r.code !== 0) {
      const { vboxError } = await import('./vboxmanage.js');
      const e = vboxError(saveStateArgv(rec.uuid), r.stderr, `VirtualBox could not save '${rt.name}'`);
      throw new KumoError('STATE_SAVE_FAILED', 'external', e.message, { hint: `the machine was left running; ${e.hint ?? ''}`.trim(), ...(e.details ? { details: e.details } : {}) });
    }
    return { bytes: 0, ms: Date.now() - t0, machine: '' };
  }

  async hasSavedState(rt: InstanceRuntime): Promise<boolean> {
    const { info } = await this.running(rt);
    return info?.state === 'saved';
  }

  async discardSavedState(rt: InstanceRuntime): Promise<void> {
    const { v, rec, info } = await this.running(rt);
    if (info?.state === 'saved') await v.call(discardStateArgv(rec.uuid), 'VBoxManage discardstate');
  }

  /**
   * Clone the machine of stopped `src` for the new instance `dst` (`clonevm --mode machine`: a full
   * copy of its current disk into dst's folder, registered under dst's name and UUID).
   */
  async cloneMachine(src: InstanceRuntime, dst: InstanceRuntime): Promise<void> {
    const { v, rec, info } = await this.made(src, 'be cloned');
    if (LIVE.has(info.state)) throw new InstanceRunningError(src.name);
    const id = await instanceIdOf(dst);
    const f = instanceFilesIn(dst.dir);
    const out: VBoxRecord = { name: vmName(id), uuid: dst.vmgenid ?? (await import('../shared/mac.js')).vmgenidFor(id), baseFolder: f.vboxDir, dir: dst.dir, home: dst.paths.home };
    await ensurePrivateDir(f.vboxDir);
    await v.call(cloneVmArgv(rec.uuid, out), 'VBoxManage clonevm', { timeoutMs: 60 * 60_000 });
    await writeJsonAtomic(f.vboxRecord, out, 0o600);
  }

  /** kumo VMs registered with VirtualBox whose settings lie in an instance folder of this home that is gone. */
  async orphans(paths: KumoPaths): Promise<OrphanMachine[]> {
    const v = this.vbox();
    let list: { name: string; uuid: string }[];
    try {
      list = parseListVms(await v.call(listVmsArgv()));
    } catch (e) {
      if (isKumoError(e) && e.code === 'TOOL_MISSING') return [];
      throw e;
    }
    const root = resolve(paths.instances) + sep;
    const out: OrphanMachine[] = [];
    for (const vm of list.filter((x) => x.name.startsWith(VM_PREFIX))) {
      const r = await v.raw(showVmInfoArgv(vm.uuid));
      if (r.code !== 0) continue;
      const info = parseShowVmInfo(r.stdout);
      const cfg = info.cfgFile ? resolve(info.cfgFile) : '';
      if (!cfg.startsWith(root)) continue;
      const instance = cfg.slice(root.length).split(sep)[0]!;
      const dir = resolve(paths.instances, instance);
      if (await exists(instanceFilesIn(dir).record)) continue;
      out.push({ driver: this.name, instance, dir, where: `VirtualBox machine '${vm.name}' (${vm.uuid})`, state: mapState(info.state), driverOptions: { uuid: vm.uuid } });
    }
    return out;
  }

  async removeOrphan(paths: KumoPaths, orphan: OrphanMachine, o: { force?: boolean } = {}): Promise<void> {
    const uuid = orphan.driverOptions.uuid;
    if (typeof uuid !== 'string') throw new InvalidInputError('VBOX_ORPHAN_INVALID', `${orphan.where} does not say which machine it is`, { hint: 'list orphans again with kumo list' });
    const v = this.vbox();
    const r = await v.raw(showVmInfoArgv(uuid));
    if (r.code !== 0) return;
    const info = parseShowVmInfo(r.stdout);
    const root = resolve(paths.instances) + sep;
    if (!info.name.startsWith(VM_PREFIX) || !info.cfgFile || !resolve(info.cfgFile).startsWith(root)) throw new ConflictError('VBOX_VM_TAKEN', `${orphan.where} is not a machine of this kumo home`, { hint: 'kumo leaves it alone' });
    if (LIVE.has(info.state) && !o.force) throw new ConflictError('VBOX_ORPHAN_RUNNING', `${orphan.where} is still ${info.state}`, { hint: 'repair with --force to power it off and remove it' });
    await this.destroyVm(v, uuid);
    await rm(orphan.dir, { recursive: true, force: true }).catch(() => {});
  }
}

/** The disks of this home's VirtualBox VMs, for the image store's in-use rule: each VM's base image. */
export async function virtualboxDisks(paths: KumoPaths): Promise<{ owner: string; disk: string }[]> {
  const { readdir } = await import('node:fs/promises');
  const out: { owner: string; disk: string }[] = [];
  for (const n of await readdir(paths.instances).catch(() => [] as string[])) {
    if (n.startsWith('.')) continue; // a delete in progress (instance/store.ts removeInstanceFolder)
    const rec = await readVBoxRecord(resolve(paths.instances, n));
    if (rec?.base) out.push({ owner: `VirtualBox machine '${rec.name}' (instance '${n}')`, disk: rec.base.source });
  }
  // A base medium VirtualBox still carries differencing images of (a VM kumo's folders no longer know of) keeps its image in use too.
  const { listBaseMedia } = await import('./media.js');
  const media = await listBaseMedia(paths);
  if (media.length) {
    const r = await new VBox({ timeoutMs: 20_000 }).raw(listHddsArgv()).catch(() => undefined);
    if (r && r.code === 0) {
      const hdds = parseListHdds(r.stdout);
      for (const m of media) {
        const kids = childrenOf(hdds, m.vdi);
        if (kids.length) out.push({ owner: `VirtualBox medium ${m.vdi} (differencing images ${kids.map((k) => k.location).join(', ')})`, disk: m.sidecar.source });
      }
    }
  }
  return out;
}

