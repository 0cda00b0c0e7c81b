/**
 * The libvirt driver: the same instances as the QEMU driver, run as libvirt domains on a local or
 * remote libvirtd (`driverOptions.connect`, a libvirt URI). Everything goes through `virsh`.
 *
 * - The domain is defined at start from the instance runtime (redefined each start, keeping its
 *   UUID, so a changed cpus/memory/ports applies) and stays defined while the instance exists, so
 *   `virsh list --all` shows it. A domain without kumo's metadata, or with another kumo home's, is
 *   never touched: its name is reported as taken.
 * - A start that fails after kumo defined the domain undefines it again (nothing half-defined).
 * - Disks: the instance's overlay and seed files (local URIs), or volumes in a storage pool
 *   (`driverOptions.pool`, any URI): the base is uploaded once as a `kumo-base-*` volume, the
 *   instance disk is a qcow2 volume backed by it, the seed a raw volume (see ./pool.ts).
 * - Networking: user-mode (the default), ssh and the user's ports forwarded from the host by
 *   `hostfwd_add` through the monitor once QEMU runs; or a libvirt network (`network:default`),
 *   the guest's address then read from the network's DHCP leases (`sshEndpoint`).
 * - Stop: ACPI shutdown, destroy after the timeout. `cleanup` after a stop has nothing to remove
 *   (the domain stays defined); delete is `purge`, which the instance layer calls after cleanup:
 *   undefine (with --nvram for UEFI) and remove kumo's volumes, never a base.
 * - Status comes from `virsh domstate`; a domain removed behind kumo's back reads as stopped with
 *   a detail and a `desync` hint, and the next start defines it again (the "de-sync" repair).
 *   Domains of this home whose instance directory is gone are `orphans`, removed by `removeOrphan`.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exists as fileExists, writeFileAtomic } from '../../core/fs.js';
import { ConflictError, InstanceRunningError, InvalidInputError, KumoError, NotFoundError, TimeoutError } from '../../core/errors.js';
import { debug } from '../../core/log.js';
import { Emitter } from '../../events/events.js';
import type { KumoPaths } from '../../config/paths.js';
import { DriverUnsupportedError, type Driver, type DriverCapabilities, type InstanceRuntime, type MachineShape, type OrphanMachine, type PortForward, type RuntimeStatus, type SavedState, type SaveStateOptions, type SshEndpoint, type StartOptions, type StartResult, type StopOptions } from '../driver.js';
import { assignPorts, freePort, portFree, PortInUseError, PORT_PICK_ATTEMPTS, repick } from '../net.js';
import { detectAccel } from '../shared/accel.js';
import { checkHostfwdAdd, checkHostfwdRemove, hostfwdAddCommand, hostfwdRemoveCommand, hostfwdTaken } from '../shared/hostfwd.js';
import { checkHostMemory } from '../shared/resources.js';
import { Virsh, clientName, defaultUri, firstError, isLocalUri, parseUri, reachHost, LibvirtUnavailableError } from './virsh.js';
import { buildDomainXml, parseDomainFacts, parseNetworkOption, parsePoolOption, type DiskSource, type DomainFacts, type KumoMetadata, type NetworkSpec } from './xml.js';
import { filesReadableBy, KUMO_POOL, prepareVolumes, qemuAccount, removeVolumes, requirePool } from './pool.js';
import { findDesync, rememberUri, removeOrphanDomain } from './sync.js';
import { sleep } from '../../core/time.js';
import { instanceFilesIn } from '../../config/instance-files.js';


/** The netdev id libvirt gives the first interface's backend. */
export const USER_NETDEV = 'hostnet0';

/** A host port for a remote libvirt host, where kumo cannot ask the kernel (QEMU's refusal makes it pick again). */
function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

/** The libvirt settings of one instance, from `driverOptions` in instance.json. */
export interface LibvirtOptions {
  /** The libvirt connection URI. */
  connect: string;
  /** The domain name (default: the instance name). */
  domain: string;
  network: NetworkSpec;
  /** Storage pool for the instance's volumes; files in the instance dir when absent. */
  pool?: string;
  /** Host address ssh and the forwards bind to on the libvirt host (default 127.0.0.1). */
  forwardAddr: string;
}

/** The instance's libvirt options, validated. */
export function libvirtOptions(rt: Pick<InstanceRuntime, 'name' | 'driverOptions'>): LibvirtOptions {
  const d = rt.driverOptions ?? {};
  const connect = typeof d.connect === 'string' && d.connect ? d.connect : defaultUri();
  parseUri(connect);
  const domain = typeof d.domain === 'string' && d.domain ? d.domain : rt.name;
  const o: LibvirtOptions = { connect, domain, network: parseNetworkOption(d.network), forwardAddr: typeof d.forwardAddr === 'string' && d.forwardAddr ? d.forwardAddr : '127.0.0.1' };
  if (d.pool !== undefined && d.pool !== null && d.pool !== '') o.pool = parsePoolOption(d.pool);
  return o;
}

/**
 * Files the libvirt driver keeps in the instance directory: the serial console, and the domain
 * XML kumo last defined (written once a start succeeded: its presence says the domain was made,
 * so a domain missing later was removed behind kumo's back, not merely never started).
 */
export function libvirtFiles(dir: string): { serialLog: string; domainXml: string } {
  const f = instanceFilesIn(dir);
  return { serialLog: f.serialLog, domainXml: f.domainXml };
}

/** A remote URI without a storage pool: the remote host cannot read this machine's files. */
export function poolRequiredError(name: string, uri: string): InvalidInputError {
  return new InvalidInputError('LIBVIRT_POOL_REQUIRED', `instance '${name}' is on a remote libvirt (${uri}) but has no storage pool`, {
    hint: 'a remote host cannot read files of this machine: give a storage pool on that host (driver option pool, e.g. --pool default)',
    details: { uri },
  });
}

export class DomainNameTakenError extends ConflictError {
  constructor(domain: string, uri: string, owner?: string) {
    super('LIBVIRT_DOMAIN_TAKEN', `libvirt at ${uri} already has a domain '${domain}' that is not this kumo instance's${owner ? ` (it belongs to ${owner})` : ''}`, {
      hint: `choose another instance name, or remove that domain yourself (virsh -c ${uri} undefine ${domain}) if you no longer need it`,
      details: { domain, uri },
    });
  }
}

/** Whether the facts of a defined domain say it is this instance's. */
export function ownedBy(facts: Pick<DomainFacts, 'metadata'>, rt: Pick<InstanceRuntime, 'name' | 'dir' | 'paths'>): boolean {
  const m = facts.metadata;
  return !!m && m.instance === rt.name && m.home === rt.paths.home && m.dir === rt.dir;
}

function ownerText(m: KumoMetadata | undefined): string | undefined {
  return m ? `kumo instance '${m.instance}' of ${m.client ? `${m.client}:` : ''}${m.home}` : undefined;
}

function mapState(state: string, reason?: string): RuntimeStatus['state'] {
  switch (state) {
    case 'running':
    case 'blocked':
    case 'in shutdown':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case 'crashed':
      return 'crashed';
    case 'shut off':
      return reason === 'crashed' ? 'crashed' : 'stopped';
    default:
      return 'unknown';
  }
}

/**
 * The QEMU process libvirt started for a domain, found by its `-uuid` argument: for a local daemon
 * whose pid files kumo cannot read (another user's /run/libvirt, or a daemon in its own mount
 * namespace). Undefined when none matches.
 */
export async function pidByUuid(uuid: string): Promise<number | undefined> {
  const { readdir, readFile } = await import('node:fs/promises');
  for (const e of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    const argv = await readFile(`/proc/${e}/cmdline`, 'latin1').then((c) => c.split('\0'), () => [] as string[]);
    const i = argv.indexOf('-uuid');
    if (i > 0 && argv[i + 1] === uuid && /qemu-system|qemu-kvm/.test(argv[0] ?? '')) return Number(e);
  }
  return undefined;
}

export class LibvirtDriver implements Driver {
  readonly name = 'libvirt';
  /** Ports are forwarded live only with user networking, not on a libvirt network: see `capabilitiesFor`. */
  readonly capabilities: DriverCapabilities = {
    livePorts: false,
    offlineSnapshots: false,
    liveSnapshots: false,
  };

  /** What this driver can do for one instance: live port forwards with user networking only. */
  capabilitiesFor(rt: Pick<InstanceRuntime, 'name' | 'driverOptions'>): DriverCapabilities {
    return { ...this.capabilities, livePorts: libvirtOptions(rt).network.kind === 'user' };
  }

  private noPortsError(o: LibvirtOptions): DriverUnsupportedError {
    return new DriverUnsupportedError(this.name, `forward ports on a libvirt network (${o.network.kind === 'user' ? 'user' : o.network.name})`, 'reach the guest at its address on that network instead');
  }

  /**
   * The daemon at the instance's URI answers; its storage pool and libvirt network exist (nothing
   * is started or changed); a remote URI has a pool. Without a pool on a local daemon whose QEMU
   * runs as another account (Debian's qemu:///system: libvirt-qemu, which cannot enter kumo's
   * 0700 home), the instance gets kumo's own pool (made at its first start): the options returned.
   */
  async check(_paths: KumoPaths, driverOptions?: Record<string, unknown>, shape?: MachineShape): Promise<Record<string, unknown> | undefined> {
    const o = libvirtOptions({ name: 'check', ...(driverOptions ? { driverOptions } : {}) });
    // a local daemon's machines run here: refuse what this host cannot give (a remote host says so itself)
    if (shape && isLocalUri(o.connect)) checkHostMemory(shape.memoryMiB);
    const v = new Virsh(o.connect, { timeoutMs: 30_000 });
    await v.ping();
    let out: Record<string, unknown> | undefined;
    if (!o.pool && isLocalUri(o.connect) && !filesReadableBy(await qemuAccount(v))) {
      out = { ...(driverOptions ?? {}), pool: KUMO_POOL };
      debug(`libvirt: QEMU at ${o.connect} runs as another account; the instance's disks go into pool '${KUMO_POOL}'`);
    } else if (o.pool && o.pool !== KUMO_POOL) await requirePool(v, o.pool);
    else if (!o.pool && !isLocalUri(o.connect)) throw poolRequiredError('(new)', o.connect);
    if (o.network.kind === 'network') {
      const r = await v.raw(['net-info', '--', o.network.name]);
      if (r.code !== 0) {
        throw new NotFoundError('LIBVIRT_NETWORK_NOT_FOUND', `libvirt at ${o.connect} has no network '${o.network.name}': ${firstError(r.stderr)}`, {
          hint: `list the networks with 'virsh -c ${o.connect} net-list --all', or use --network user (forwarded ports)`,
          details: { uri: o.connect, network: o.network.name },
        });
      }
    }
    return out;
  }

  /** Pin the connect URI (its default depends on LIBVIRT_DEFAULT_URI and the user) and validate the rest. */
  resolveOptions(driverOptions: Record<string, unknown> | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = { ...(driverOptions ?? {}) };
    if (typeof out.connect !== 'string' || !out.connect) out.connect = defaultUri();
    libvirtOptions({ name: 'check', driverOptions: out });
    return out;
  }

  consoleLogPath(rt: InstanceRuntime): string {
    return libvirtFiles(rt.dir).serialLog;
  }

  private virsh(o: LibvirtOptions, signal?: AbortSignal): Virsh {
    return new Virsh(o.connect, signal ? { signal } : {});
  }

  /** The defined domain's facts, checked to be this instance's; undefined when no such domain. */
  private async ourDomain(v: Virsh, o: LibvirtOptions, rt: InstanceRuntime): Promise<DomainFacts | undefined> {
    const xml = await v.dumpxml(o.domain, true);
    if (xml === undefined) return undefined;
    const facts = parseDomainFacts(xml);
    if (!ownedBy(facts, rt)) throw new DomainNameTakenError(o.domain, o.connect, ownerText(facts.metadata));
    return facts;
  }

  async status(rt: InstanceRuntime): Promise<RuntimeStatus> {
    const o = libvirtOptions(rt);
    const v = this.virsh(o);
    let st;
    try {
      st = await v.domstate(o.domain);
    } catch (e) {
      if (e instanceof LibvirtUnavailableError) return { state: 'unknown', detail: e.message };
      throw e;
    }
    if (!st) {
      // Never started: the first start defines the domain.
      if (!(await fileExists(libvirtFiles(rt.dir).domainXml))) return { state: 'stopped' };
      return {
        state: 'stopped',
        detail: `domain '${o.domain}' is not defined in libvirt at ${o.connect} (removed behind kumo's back?)`,
        desync: `'kumo start ${rt.name}' defines it again; 'kumo delete ${rt.name}' removes the instance`,
      };
    }
    const xml = await v.dumpxml(o.domain, true).catch(() => undefined);
    const facts = xml ? parseDomainFacts(xml) : undefined;
    if (facts && !ownedBy(facts, rt)) {
      // This instance has no domain; the name is someone else's (start will refuse, delete leaves it alone).
      return {
        state: 'stopped',
        detail: `the domain name '${o.domain}' at ${o.connect} is taken by ${ownerText(facts.metadata) ?? 'a domain kumo did not make'}; this instance has no domain`,
        desync: `'kumo delete ${rt.name}' removes this instance (that domain is left alone); it cannot start under this name`,
      };
    }
    const state = mapState(st.state, st.reason);
    const r: RuntimeStatus = { state, accel: facts?.type === 'kvm' ? 'kvm' : 'tcg' };
    if (state === 'crashed' || state === 'unknown') r.detail = `libvirt reports '${st.state}${st.reason ? ` (${st.reason})` : ''}'`;
    if (state === 'running' && isLocalUri(o.connect)) {
      const pid = (await this.localPid(o)) ?? (facts?.uuid ? await pidByUuid(facts.uuid) : undefined);
      if (pid) r.pid = pid;
    }
    return r;
  }

  private async localPid(o: LibvirtOptions): Promise<number | undefined> {
    const { readFile } = await import('node:fs/promises');
    const p = parseUri(o.connect);
    const dirs = p.path === '/session' ? [join(process.env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.()}`, 'libvirt/qemu/run')] : ['/run/libvirt/qemu'];
    for (const d of dirs) {
      try {
        const n = Number((await readFile(join(d, `${o.domain}.pid`), 'utf8')).trim());
        if (Number.isInteger(n) && n > 0) return n;
      } catch {
        /* not readable */
      }
    }
    return undefined;
  }

  private async chooseAccel(rt: InstanceRuntime, o: LibvirtOptions, v: Virsh): Promise<{ accel: 'kvm' | 'tcg'; reason: string }> {
    if (isLocalUri(o.connect)) return detectAccel(rt.paths, { want: rt.accel });
    if (rt.accel !== 'auto') return { accel: rt.accel, reason: `asked for ${rt.accel}` };
    // A remote host cannot be probed from here: KVM when its libvirt offers it.
    const r = await v.raw(['domcapabilities', '--virttype', 'kvm', '--arch', 'x86_64'], { timeoutMs: 30_000 });
    return r.code === 0 ? { accel: 'kvm', reason: 'the remote libvirt offers KVM' } : { accel: 'tcg', reason: 'the remote libvirt offers no KVM' };
  }

  async start(rt: InstanceRuntime, opts: StartOptions = {}): Promise<StartResult> {
    const em = new Emitter(opts.onEvent);
    const o = libvirtOptions(rt);
    const v = this.virsh(o, opts.signal);
    await v.ping();
    const existing = await this.ourDomain(v, o, rt);
    if (existing) {
      const st = await v.domstate(o.domain);
      if (st && (st.state === 'running' || st.state === 'paused' || st.state === 'blocked' || st.state === 'in shutdown' || st.state === 'pmsuspended')) {
        throw new InstanceRunningError(rt.name, { message: `instance '${rt.name}' is already running (libvirt domain '${o.domain}' is ${st.state})` });
      }
      if (st && mapState(st.state, st.reason) === 'crashed') em.warn(`instance '${rt.name}': libvirt reports '${st.state} (${st.reason})'; starting it again`);
    }
    // A suspended instance resumes from libvirt's managed save (virsh start restores it).
    const resuming = rt.restore ? await this.hasSavedState(rt) : false;
    if (rt.restore && !resuming) throw new KumoError('STATE_RESTORE_FAILED', 'external', `libvirt holds no saved state of domain '${o.domain}' of '${rt.name}'`, { hint: 'it was removed behind kumo\u2019s back; kumo boots the machine instead' });
    const t0 = Date.now();
    const local = isLocalUri(o.connect);
    if (!o.pool && !local) throw poolRequiredError(rt.name, o.connect);
    // fixed ports must be free; dynamic ones (0:80) get a host port here (net.ts assignPorts)
    const avoid = new Set<number>(rt.sshPort ? [rt.sshPort] : []);
    let ports = rt.ports;
    if (o.network.kind === 'user' && local) ports = await assignPorts(rt.ports, avoid);
    else if (o.network.kind === 'user') ports = rt.ports.map((p) => (p.dynamic && !p.hostPort ? { ...p, hostPort: randomPort() } : p));
    const accel = await this.chooseAccel(rt, o, v);
    debug(`libvirt: accelerator ${accel.accel} (${accel.reason})`);

    let disk: DiskSource = { kind: 'file', path: rt.disk.path, format: rt.disk.format };
    let seed: DiskSource | undefined = rt.seed ? { kind: 'file', path: rt.seed.path, format: 'raw' } : undefined;
    let volumes: KumoMetadata['volumes'];
    if (o.pool) {
      const vols = await prepareVolumes(v, o.pool, o.domain, rt, em);
      disk = vols.disk;
      seed = vols.seed;
      volumes = vols.created;
    }
    let sshPort = o.network.kind === 'user' ? rt.sshPort || (local ? await freePort() : 0) : 22;
    if (o.network.kind === 'user' && local && !(await portFree(sshPort, o.forwardAddr))) sshPort = await freePort(o.forwardAddr);
    if (o.network.kind === 'user' && !sshPort) sshPort = randomPort();

    const meta: KumoMetadata = {
      instance: rt.name,
      home: rt.paths.home,
      dir: rt.dir,
      client: clientName(),
      created: existing?.metadata?.created ?? new Date().toISOString(),
      ...(o.network.kind === 'user' ? { sshPort } : {}),
      ...(volumes?.length || existing?.metadata?.volumes ? { volumes: mergeVolumes(existing?.metadata?.volumes, volumes) } : {}),
    };
    if (existing?.metadata?.instanceId) meta.instanceId = existing.metadata.instanceId;
    const xml = buildDomainXml({
      name: o.domain,
      ...(existing?.uuid ? { uuid: existing.uuid } : {}),
      type: accel.accel === 'kvm' ? 'kvm' : 'qemu',
      cpus: rt.cpus,
      memoryMiB: rt.memoryMiB,
      firmware: rt.firmware ?? 'bios',
      disk,
      ...(seed ? { seed } : {}),
      mac: rt.mac,
      network: o.network,
      ...(local ? { serialLog: libvirtFiles(rt.dir).serialLog } : {}),
      metadata: meta,
    });
    const fresh = !existing;
    // Remembered before the domain exists, so an orphan on this URI is always looked for.
    await rememberUri(rt.paths, o.connect).catch((e: Error) => debug(`libvirt: could not remember ${o.connect}: ${e.message}`));
    try {
      // A managed save belongs to the domain as it was defined: redefining it would not change its ABI, but keep it as is.
      if (!resuming) await v.define(xml);
    } catch (e) {
      if (fresh && volumes?.length) await removeVolumes(v, volumes).catch(() => {});
      throw e;
    }
    try {
      const r = await v.raw(['start', '--', o.domain]);
      if (r.code !== 0) {
        const denied = /Cannot access storage file '([^']+)' \(as uid:(\d+), gid:(\d+)\): Permission denied/.exec(r.stderr);
        if (denied) {
          throw new KumoError('LIBVIRT_DISK_ACCESS', 'environment', `libvirt at ${o.connect} runs QEMU as uid ${denied[2]}, which cannot read ${denied[1]} of instance '${rt.name}'`, {
            hint: o.pool
              ? `the volume's folder in pool '${o.pool}' must be readable by that account: see 'virsh -c ${o.connect} pool-dumpxml ${o.pool}'`
              : `kumo's home (${rt.paths.home}) is private to you; put the instance's disks in a storage pool: delete it and create it again (kumo picks pool '${KUMO_POOL}' for such a daemon) or with --pool NAME`,
            details: { uri: o.connect, file: denied[1], uid: Number(denied[2]), gid: Number(denied[3]) },
          });
        }
        throw new KumoError('LIBVIRT_START_FAILED', 'external', `libvirt could not start domain '${o.domain}' of instance '${rt.name}': ${firstError(r.stderr)}`, {
          hint: `run with --debug to see the domain XML; 'virsh -c ${o.connect} start ${o.domain}' shows the same error`,
          details: { uri: o.connect, stderr: r.stderr },
        });
      }
      if (o.network.kind === 'user') ({ sshPort, ports } = await this.addForwards(v, o, rt, sshPort, ports, local, avoid));
    } catch (e) {
      await v.raw(['destroy', '--', o.domain]).catch(() => undefined);
      if (fresh) {
        await v.raw(['undefine', '--nvram', '--', o.domain]).catch(() => undefined);
        if (volumes?.length) await removeVolumes(v, volumes).catch(() => {});
      }
      throw e;
    }
    if (o.network.kind === 'user' && sshPort !== meta.sshPort) await this.setMetadata(v, o, { ...meta, sshPort });
    await writeFileAtomic(libvirtFiles(rt.dir).domainXml, xml, 0o600).catch((e: Error) => debug(`libvirt: could not keep domain.xml: ${e.message}`));
    return { accel: accel.accel, sshPort, ...(o.network.kind === 'user' ? { ports } : {}), ...(resuming ? { restored: { startMs: Date.now() - t0, restoreMs: 0 } } : {}) };
  }

  /**
   * Suspend through libvirt's managed save (`virsh managedsave`): libvirt keeps the state itself
   * and its next `virsh start` restores it (`stateFile` is not used).
   */
  async saveState(rt: InstanceRuntime, _stateFile: string, o: SaveStateOptions = {}): Promise<SavedState> {
    const lo = libvirtOptions(rt);
    const v = this.virsh(lo, o.signal);
    const t0 = Date.now();
    const r = await v.raw(['managedsave', '--', lo.domain], { timeoutMs: 10 * 60_000 });
    if (r.code !== 0)
      throw new KumoError('STATE_SAVE_FAILED', 'external', `libvirt could not save domain '${lo.domain}' of '${rt.name}': ${firstError(r.stderr)}`, {
        hint: `the machine was left running; 'virsh -c ${lo.connect} managedsave ${lo.domain}' shows the same error`,
      });
    return { bytes: 0, ms: Date.now() - t0, machine: '' };
  }

  /** Whether libvirt holds a managed save of the instance's domain. */
  async hasSavedState(rt: InstanceRuntime): Promise<boolean> {
    const lo = libvirtOptions(rt);
    const r = await this.virsh(lo).raw(['dominfo', '--', lo.domain]);
    return r.code === 0 && /^Managed save:\s+yes/m.test(r.stdout);
  }

  async discardSavedState(rt: InstanceRuntime): Promise<void> {
    const lo = libvirtOptions(rt);
    if (await this.hasSavedState(rt)) await this.virsh(lo).call(['managedsave-remove', '--', lo.domain]);
  }

  /** Rewrite kumo's metadata element of a defined domain (live and persistent). */
  private async setMetadata(v: Virsh, o: LibvirtOptions, meta: KumoMetadata): Promise<void> {
    const { metadataXml, KUMO_NS, KUMO_NS_PREFIX } = await import('./xml.js');
    const xml = metadataXml(meta, '').replace(` xmlns:${KUMO_NS_PREFIX}='${KUMO_NS}'`, '');
    const st = await v.domstate(o.domain);
    const live = st?.state === 'running' || st?.state === 'paused';
    await v.call(['metadata', '--uri', KUMO_NS, '--key', KUMO_NS_PREFIX, '--set', xml, '--config', ...(live ? ['--live'] : []), '--', o.domain]);
  }

  /**
   * Add the ssh forward (retrying another port when taken) and the user's forwards, a dynamic
   * one picked again when its port was taken meanwhile; returns the ssh port and the forwards.
   */
  private async addForwards(v: Virsh, o: LibvirtOptions, rt: InstanceRuntime, sshPort: number, given: PortForward[], local: boolean, avoid: Set<number>): Promise<{ sshPort: number; ports: PortForward[] }> {
    let port = sshPort;
    for (let attempt = 0; ; attempt++) {
      const out = await v.hmp(o.domain, hostfwdAddCommand(USER_NETDEV, { proto: 'tcp', hostAddr: o.forwardAddr, hostPort: port, guestPort: 22 }));
      if (!out.trim()) break;
      if (hostfwdTaken(out) && attempt < PORT_PICK_ATTEMPTS) {
        debug(`libvirt: ssh port ${port} is taken; trying another`);
        port = local ? await freePort(o.forwardAddr, avoid) : randomPort();
        continue;
      }
      throw new KumoError('PORT_ADD_FAILED', 'external', `could not forward ssh of '${rt.name}' from ${o.forwardAddr}:${port}: ${out.trim()}`);
    }
    avoid.add(port);
    let ports = given;
    for (let i = 0; i < ports.length; i++) {
      if (!ports[i]!.dynamic) {
        await this.addPort(rt, ports[i]!);
        continue;
      }
      for (let attempt = 0; ; attempt++) {
        const f = ports[i]!;
        const out = await v.hmp(o.domain, hostfwdAddCommand(USER_NETDEV, f));
        if (hostfwdTaken(out) && attempt < PORT_PICK_ATTEMPTS) {
          debug(`libvirt: dynamic port ${f.hostPort} (guest ${f.guestPort}/${f.proto}) is taken; picking another`);
          ports = local ? await repick(ports, i, avoid) : ports.map((q, j) => (j === i ? { ...q, hostPort: randomPort() } : q));
          continue;
        }
        checkHostfwdAdd(out, f);
        break;
      }
    }
    return { sshPort: port, ports };
  }

  async stop(rt: InstanceRuntime, opts: StopOptions = {}): Promise<void> {
    const em = new Emitter(opts.onEvent);
    const o = libvirtOptions(rt);
    const v = this.virsh(o, opts.signal);
    const facts = await this.ourDomain(v, o, rt);
    if (!facts) return;
    const running = async () => {
      const st = await v.domstate(o.domain);
      return !!st && st.state !== 'shut off' && st.state !== 'crashed';
    };
    if (!(await running())) return;
    const timeoutMs = opts.timeoutMs ?? 60_000;
    if (!opts.force) {
      const r = await v.raw(['shutdown', '--mode', 'acpi', '--', o.domain]);
      if (r.code === 0) {
        const end = Date.now() + timeoutMs;
        let delay = 100;
        while (Date.now() < end) {
          if (!(await running())) return;
          if (opts.signal?.aborted) break;
          await sleep(delay);
          delay = Math.min(500, delay * 2);
        }
        if (!(await running())) return;
        em.warn(`'${rt.name}' did not power down within ${Math.round(timeoutMs / 1000)} s; forcing it off`);
      } else {
        em.warn(`could not ask '${rt.name}' to power down: ${firstError(r.stderr)}; forcing`);
      }
    }
    const r = await v.raw(['destroy', '--', o.domain]);
    if (r.code !== 0 && (await running())) {
      throw new KumoError('STOP_FAILED', 'external', `libvirt could not stop domain '${o.domain}' of '${rt.name}': ${firstError(r.stderr)}`, { hint: `try 'virsh -c ${o.connect} destroy ${o.domain}'` });
    }
    const end = Date.now() + 10_000;
    while (await running()) {
      if (Date.now() > end) throw new TimeoutError('STOP_FAILED', `domain '${o.domain}' of '${rt.name}' is still running after destroy`, { hint: `check it with 'virsh -c ${o.connect} domstate ${o.domain}'` });
      await sleep(100);
    }
  }

  /**
   * Leftovers after a stop: libvirt keeps none (no pid file or socket of kumo's), and the domain
   * stays defined while the instance exists. Never removes the domain or a volume: that is `purge`.
   */
  async cleanup(_rt: InstanceRuntime): Promise<void> {}

  /** Delete: undefine the domain (with its NVRAM) and remove kumo's volumes; never a base. The machine must be stopped. */
  async purge(rt: InstanceRuntime): Promise<void> {
    const o = libvirtOptions(rt);
    const v = this.virsh(o);
    let facts: DomainFacts | undefined;
    try {
      facts = await this.ourDomain(v, o, rt);
    } catch (e) {
      // The name now belongs to someone else: that domain is not ours to remove.
      if (e instanceof DomainNameTakenError) return;
      throw e;
    }
    if (!facts) {
      if (o.pool) await removeVolumes(v, defaultVolumes(o), { ifExists: true });
      return;
    }
    const st = await v.domstate(o.domain);
    if (st && st.state !== 'shut off' && st.state !== 'crashed') {
      throw new InstanceRunningError(rt.name);
    }
    const args = ['undefine', '--managed-save', ...(facts.nvram || rt.firmware === 'uefi' ? ['--nvram'] : []), '--', o.domain];
    const r = await v.raw(args);
    if (r.code !== 0 && (await v.domstate(o.domain))) {
      throw new KumoError('LIBVIRT_UNDEFINE_FAILED', 'external', `libvirt could not undefine domain '${o.domain}': ${firstError(r.stderr)}`, { hint: `try 'virsh -c ${o.connect} undefine --nvram ${o.domain}'` });
    }
    const vols = mergeVolumes(facts.metadata?.volumes, o.pool ? defaultVolumes(o) : undefined);
    if (vols.length) await removeVolumes(v, vols, { ifExists: true });
    await rm(libvirtFiles(rt.dir).domainXml, { force: true });
  }

  async addPort(rt: InstanceRuntime, fwd: PortForward): Promise<void> {
    const o = libvirtOptions(rt);
    if (o.network.kind !== 'user') throw this.noPortsError(o);
    if (isLocalUri(o.connect) && !(await portFree(fwd.hostPort, fwd.hostAddr, fwd.proto))) throw new PortInUseError(fwd.hostAddr, fwd.hostPort, `forward to guest port ${fwd.guestPort}`);
    checkHostfwdAdd(await this.virsh(o).hmp(o.domain, hostfwdAddCommand(USER_NETDEV, fwd)), fwd);
  }

  async removePort(rt: InstanceRuntime, fwd: PortForward): Promise<void> {
    const o = libvirtOptions(rt);
    if (o.network.kind !== 'user') throw this.noPortsError(o);
    checkHostfwdRemove(await this.virsh(o).hmp(o.domain, hostfwdRemoveCommand(USER_NETDEV, fwd)), fwd);
  }

  /**
   * Where to reach the guest's ssh from this machine: the forwarded port (user networking), or
   * the address libvirt's network handed out by DHCP (undefined until the guest has a lease).
   */
  async sshEndpoint(rt: InstanceRuntime): Promise<SshEndpoint | undefined> {
    const o = libvirtOptions(rt);
    const v = this.virsh(o);
    if (o.network.kind === 'user') {
      const xml = await v.dumpxml(o.domain);
      const port = (xml ? parseDomainFacts(xml).metadata?.sshPort : undefined) ?? rt.sshPort;
      const host = o.forwardAddr === '127.0.0.1' || o.forwardAddr === '0.0.0.0' ? reachHost(o.connect) : o.forwardAddr;
      return port ? { host, port } : undefined;
    }
    const addr = await this.leaseAddress(v, o.domain, rt.mac);
    return addr ? { host: addr, port: 22 } : undefined;
  }

  /**
   * kumo domains of this home whose instance directory is gone, on the URIs the home's instances
   * use, the URIs it remembers, and `driverOptions.connect` (which must answer).
   */
  async orphans(paths: KumoPaths, o: { driverOptions?: Record<string, unknown> } = {}): Promise<OrphanMachine[]> {
    const uris: string[] = [];
    if (o.driverOptions && typeof o.driverOptions.connect === 'string' && o.driverOptions.connect) {
      const uri = libvirtOptions({ name: 'orphans', driverOptions: o.driverOptions }).connect;
      await new Virsh(uri, { timeoutMs: 30_000 }).ping();
      uris.push(uri);
    }
    const d = await findDesync(paths, uris, { forget: true, timeoutMs: 30_000 });
    for (const u of d.unreachable) debug(`libvirt: could not look for orphans at ${u.uri}: ${u.reason}`);
    return d.orphanDomains.map((k) => ({
      driver: this.name,
      instance: k.facts.metadata!.instance,
      dir: k.facts.metadata!.dir,
      where: `libvirt domain '${k.domain}' at ${k.uri}`,
      state: mapState(k.state),
      driverOptions: { connect: k.uri, domain: k.domain },
    }));
  }

  /** Undefine an orphan domain (destroying it first only with `force`) and remove its volumes; never a base. */
  async removeOrphan(paths: KumoPaths, orphan: OrphanMachine, o: { force?: boolean } = {}): Promise<void> {
    const { connect, domain } = orphan.driverOptions;
    if (typeof connect !== 'string' || typeof domain !== 'string') throw new InvalidInputError('LIBVIRT_ORPHAN_INVALID', `${orphan.where} does not say where it is`, { hint: 'list orphans again with kumo list' });
    await removeOrphanDomain(paths, connect, domain, o);
  }

  /** The IPv4 address of the NIC with `mac`, from the network's DHCP leases. */
  async leaseAddress(v: Virsh, domain: string, mac: string): Promise<string | undefined> {
    const r = await v.raw(['domifaddr', '--source', 'lease', '--', domain], { timeoutMs: 30_000 });
    if (r.code !== 0) return undefined;
    return parseDomifaddr(r.stdout, mac);
  }
}

/** The IPv4 address of `mac` in `virsh domifaddr` output. */
export function parseDomifaddr(out: string, mac: string): string | undefined {
  for (const line of out.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 4 && cols[1]?.toLowerCase() === mac.toLowerCase() && cols[2] === 'ipv4') return cols[3]!.split('/')[0];
  }
  return undefined;
}

function mergeVolumes(a?: { pool: string; name: string }[], b?: { pool: string; name: string }[]): { pool: string; name: string }[] {
  const out = new Map<string, { pool: string; name: string }>();
  for (const v of [...(a ?? []), ...(b ?? [])]) out.set(`${v.pool}/${v.name}`, v);
  return [...out.values()];
}

/** The volumes kumo names for an instance in its pool (used when the domain's metadata is gone). */
export function defaultVolumes(o: Pick<LibvirtOptions, 'pool' | 'domain'>): { pool: string; name: string }[] {
  if (!o.pool) return [];
  return [
    { pool: o.pool, name: `kumo-${o.domain}-disk.qcow2` },
    { pool: o.pool, name: `kumo-${o.domain}-seed.iso` },
  ];
}
