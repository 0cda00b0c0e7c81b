/**
 * VBoxManage, as kumo drives it: pure argv builders for every operation (one function each, no
 * I/O, unit-tested against the syntax of the VirtualBox manual's VBoxManage chapter), parsers of
 * its outputs (`showvminfo --machinereadable`, `list vms`, `list hdds`), and the mapping of its
 * error texts to typed errors. The commands follow CernVM-Launch / libcernvm: createvm with a
 * basefolder, storagectl SATA (disk) + IDE (context ISO), modifyvm, natpf on 127.0.0.1,
 * storageattach of a multiattach base (VirtualBox makes the per-VM differencing image itself).
 *
 * Every argv names the machine by its UUID (unambiguous; a VM renamed behind kumo's back is still
 * found) except createvm, which names and numbers it.
 */
import { ConflictError, EnvironmentError, InvalidInputError, KumoError, NotFoundError } from '../../core/errors.js';
import type { PortForward } from '../driver.js';

export const VBOXMANAGE = 'VBoxManage';
/** The prefix of every VM kumo makes; a VM without it is never touched. */
export const VM_PREFIX = 'kumo-';
export const SATA = 'SATA';
export const IDE = 'IDE';
/** The NAT rule name kumo gives the ssh forward; user forwards are `kumo-<proto>-<hostport>`. */
export const SSH_RULE = 'kumo-ssh';

/** What createvm + modifyvm set up for one machine. */
export interface VmConfig {
  name: string;
  uuid: string;
  /** The folder VirtualBox keeps the machine's files in (under the instance folder). */
  baseFolder: string;
  ostype: string;
  cpus: number;
  memoryMiB: number;
  vramMiB: number;
  firmware: 'bios' | 'uefi';
  /** Colon-separated MAC; VirtualBox takes it as 12 hex digits. */
  mac: string;
  /** The serial console is written to this file. */
  serialLog: string;
  /** VRDE (remote display): off unless asked, then only on 127.0.0.1. */
  vrde?: { port: number };
}

/** The VM name for an instance-id: kumo's prefix + the id. */
export function vmName(instanceId: string): string {
  return `${VM_PREFIX}${instanceId}`;
}

export function createVmArgv(c: Pick<VmConfig, 'name' | 'uuid' | 'baseFolder' | 'ostype'>): string[] {
  return ['createvm', '--name', c.name, '--uuid', c.uuid, '--ostype', c.ostype, '--basefolder', c.baseFolder, '--register'];
}

export function storageCtlArgv(vm: string, kind: 'sata' | 'ide'): string[] {
  return kind === 'sata'
    ? ['storagectl', vm, '--name', SATA, '--add', 'sata', '--controller', 'IntelAhci', '--portcount', '1', '--hostiocache', 'on', '--bootable', 'on']
    : ['storagectl', vm, '--name', IDE, '--add', 'ide', '--controller', 'PIIX4', '--bootable', 'on'];
}

/** VirtualBox's MAC form: 12 hex digits, no separators. */
export function vboxMac(mac: string): string {
  const m = mac.replace(/[:-]/g, '').toUpperCase();
  if (!/^[0-9A-F]{12}$/.test(m)) throw new InvalidInputError('VBOX_SPEC_INVALID', `'${mac}' is not a MAC address`, { hint: 'six hex pairs, e.g. 52:54:00:12:34:56' });
  return m;
}

/** modifyvm: shape, NAT NIC (virtio, host resolver for DNS), firmware, serial port to a file, VRDE. */
export function modifyVmArgv(vm: string, c: VmConfig): string[] {
  if (!Number.isInteger(c.cpus) || c.cpus < 1) throw new InvalidInputError('VBOX_SPEC_INVALID', `cpus must be a positive integer, not ${c.cpus}`, { hint: 'e.g. --cpus 2' });
  if (!Number.isInteger(c.memoryMiB) || c.memoryMiB < 4) throw new InvalidInputError('VBOX_SPEC_INVALID', `memory must be a whole number of MiB, not ${c.memoryMiB}`, { hint: 'e.g. --memory 2G' });
  const a = [
    'modifyvm', vm,
    '--cpus', String(c.cpus),
    '--memory', String(c.memoryMiB),
    '--vram', String(c.vramMiB),
    '--acpi', 'on',
    '--ioapic', 'on',
    '--rtcuseutc', 'on',
    '--boot1', 'disk', '--boot2', 'dvd', '--boot3', 'none', '--boot4', 'none',
    '--firmware', c.firmware === 'uefi' ? 'efi' : 'bios',
    '--nic1', 'nat', '--nictype1', 'virtio', '--cableconnected1', 'on', '--macaddress1', vboxMac(c.mac),
    '--natdnshostresolver1', 'on',
    '--uart1', '0x3F8', '4', '--uartmode1', 'file', c.serialLog,
  ];
  if (c.vrde) {
    if (!Number.isInteger(c.vrde.port) || c.vrde.port < 1 || c.vrde.port > 65535) throw new InvalidInputError('VBOX_SPEC_INVALID', `VRDE port ${c.vrde.port} is not a port`, { hint: 'a port between 1 and 65535' });
    a.push('--vrde', 'on', '--vrdeaddress', '127.0.0.1', '--vrdeport', String(c.vrde.port));
  } else a.push('--vrde', 'off');
  return a;
}

/** The NAT rule name of a forward (ssh has its own). */
export function ruleName(f: Pick<PortForward, 'proto' | 'hostPort'>): string {
  return `kumo-${f.proto}-${f.hostPort}`;
}

/** A NAT port-forward rule: `name,proto,hostip,hostport,guestip,guestport` (guest ip empty: the guest's DHCP address). */
export function natRule(name: string, f: Pick<PortForward, 'proto' | 'hostAddr' | 'hostPort' | 'guestPort'>): string {
  for (const [what, p] of [['host', f.hostPort], ['guest', f.guestPort]] as const)
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidInputError('VBOX_SPEC_INVALID', `${what} port ${p} is not a port`, { hint: 'a port between 1 and 65535' });
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new InvalidInputError('VBOX_SPEC_INVALID', `'${name}' cannot be a NAT rule name`, { hint: 'letters, digits, . _ -' });
  if (!/^[0-9.]+$/.test(f.hostAddr)) throw new InvalidInputError('VBOX_SPEC_INVALID', `'${f.hostAddr}' is not an IPv4 address for a NAT forward`, { hint: 'e.g. 127.0.0.1 (the default)' });
  return `${name},${f.proto},${f.hostAddr},${f.hostPort},,${f.guestPort}`;
}

/** The ssh forward: 127.0.0.1:PORT -> guest 22. */
export function sshForward(port: number, hostAddr = '127.0.0.1'): PortForward {
  return { proto: 'tcp', hostAddr, hostPort: port, guestPort: 22 };
}

/** modifyvm --natpf1: add rules to a stopped machine. */
export function natpfAddArgv(vm: string, rules: string[]): string[] {
  return ['modifyvm', vm, ...rules.flatMap((r) => ['--natpf1', r])];
}

/** modifyvm --natpf1 delete NAME: remove a rule from a stopped machine. */
export function natpfDeleteArgv(vm: string, name: string): string[] {
  return ['modifyvm', vm, '--natpf1', 'delete', name];
}

/** controlvm natpf1: add a rule to a running machine. */
export function natpfLiveAddArgv(vm: string, rule: string): string[] {
  return ['controlvm', vm, 'natpf1', rule];
}

/** controlvm natpf1 delete: remove a rule from a running machine. */
export function natpfLiveDeleteArgv(vm: string, name: string): string[] {
  return ['controlvm', vm, 'natpf1', 'delete', name];
}

/** The base disk, attached as a multiattach medium: VirtualBox gives this VM its own differencing image. */
export function attachDiskArgv(vm: string, medium: string): string[] {
  return ['storageattach', vm, '--storagectl', SATA, '--port', '0', '--device', '0', '--type', 'hdd', '--medium', medium, '--mtype', 'multiattach'];
}

/** The seed (context ISO) in the IDE DVD drive, or an empty drive with `medium: 'none'`... */
export function attachSeedArgv(vm: string, iso: string): string[] {
  return ['storageattach', vm, '--storagectl', IDE, '--port', '0', '--device', '0', '--type', 'dvddrive', '--medium', iso];
}

/** Take a medium out of a controller slot (`--medium none`). */
export function detachArgv(vm: string, ctl: 'sata' | 'ide'): string[] {
  return ctl === 'sata'
    ? ['storageattach', vm, '--storagectl', SATA, '--port', '0', '--device', '0', '--medium', 'none']
    : ['storageattach', vm, '--storagectl', IDE, '--port', '0', '--device', '0', '--medium', 'none'];
}

/** Register the converted base and make it multiattach (one base shared by every VM's differencing image). */
export function multiattachArgv(vdi: string): string[] {
  return ['modifymedium', 'disk', vdi, '--type', 'multiattach'];
}

/** Grow a medium (the VM's differencing image) to `sizeMiB`. */
export function resizeArgv(medium: string, sizeMiB: number): string[] {
  return ['modifymedium', 'disk', medium, '--resize', String(sizeMiB)];
}

export function closeMediumArgv(kind: 'disk' | 'dvd', path: string, del = false): string[] {
  return ['closemedium', kind, path, ...(del ? ['--delete'] : [])];
}

export function startVmArgv(vm: string): string[] {
  return ['startvm', vm, '--type', 'headless'];
}

export function acpiPowerButtonArgv(vm: string): string[] {
  return ['controlvm', vm, 'acpipowerbutton'];
}

export function powerOffArgv(vm: string): string[] {
  return ['controlvm', vm, 'poweroff'];
}

export function saveStateArgv(vm: string): string[] {
  return ['controlvm', vm, 'savestate'];
}

export function discardStateArgv(vm: string): string[] {
  return ['discardstate', vm];
}

export function showVmInfoArgv(vm: string): string[] {
  return ['showvminfo', vm, '--machinereadable'];
}

export function listVmsArgv(): string[] {
  return ['list', 'vms'];
}

export function listHddsArgv(): string[] {
  return ['list', 'hdds'];
}

export function snapshotTakeArgv(vm: string, name: string, live: boolean): string[] {
  return ['snapshot', vm, 'take', name, ...(live ? ['--live'] : [])];
}

export function snapshotRestoreArgv(vm: string, name: string): string[] {
  return ['snapshot', vm, 'restore', name];
}

export function snapshotDeleteArgv(vm: string, name: string): string[] {
  return ['snapshot', vm, 'delete', name];
}

/** A full clone of the machine's current state, registered under the clone's name, UUID and base folder. */
export function cloneVmArgv(src: string, dst: Pick<VmConfig, 'name' | 'uuid' | 'baseFolder'>): string[] {
  return ['clonevm', src, '--mode', 'machine', '--name', dst.name, '--uuid', dst.uuid, '--basefolder', dst.baseFolder, '--register'];
}

/** Unregister the machine and delete its files (its differencing images, saved states, logs, the .vbox). */
export function unregisterVmArgv(vm: string): string[] {
  return ['unregistervm', vm, '--delete'];
}

export function versionArgv(): string[] {
  return ['--version'];
}

// ---------------------------------------------------------------------------------------------
// Outputs

/**
 * `showvminfo --machinereadable`: one `key=value` per line, the value quoted when it is a string
 * ("name"="value" for keys with spaces or dashes). Returns the pairs in order (keys repeat, e.g.
 * `Forwarding(0)`, and are kept as written).
 */
export function parseMachineReadable(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const raw of out.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (!line) continue;
    const mm = /^("(?:[^"\\]|\\.)*"|[^=]+)=(.*)$/.exec(line);
    if (!mm) continue;
    m.set(unquote(mm[1]!), unquote(mm[2]!));
  }
  return m;
}

function unquote(s: string): string {
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) return s.slice(1, -1).replace(/\\(["\\])/g, '$1');
  return s;
}

export type VmState = 'poweroff' | 'running' | 'paused' | 'saved' | 'aborted' | 'starting' | 'stopping' | 'saving' | 'restoring' | 'gurumeditation' | string;

/** What kumo needs from `showvminfo --machinereadable`. */
export interface VmInfo {
  name: string;
  uuid: string;
  state: VmState;
  /** The machine's settings file (.vbox): where its folder is. */
  cfgFile?: string;
  /** The medium in SATA port 0 (the VM's differencing image) and its UUID. */
  disk?: { path: string; uuid?: string };
  /** The medium in the IDE DVD drive. */
  dvd?: string;
  /** NAT rules of NIC 1 (`Forwarding(N)`), parsed. */
  forwards: { name: string; proto: 'tcp' | 'udp'; hostAddr: string; hostPort: number; guestPort: number }[];
  snapshots: { name: string; uuid: string }[];
  /** The serial port's file, when uart1 is in file mode. */
  serialFile?: string;
}

/** `showvminfo --machinereadable`, with kumo's controller names (others' VMs name theirs e.g. 'SATA Controller'). */
export function parseShowVmInfo(out: string, ctl: { sata: string; ide: string } = { sata: SATA, ide: IDE }): VmInfo {
  const m = parseMachineReadable(out);
  const info: VmInfo = { name: m.get('name') ?? '', uuid: m.get('UUID') ?? '', state: m.get('VMState') ?? 'unknown', forwards: [], snapshots: [] };
  const cfg = m.get('CfgFile');
  if (cfg) info.cfgFile = cfg;
  const disk = m.get(`${ctl.sata}-0-0`);
  if (disk && disk !== 'none') info.disk = { path: disk, ...(m.get(`${ctl.sata}-ImageUUID-0-0`) ? { uuid: m.get(`${ctl.sata}-ImageUUID-0-0`)! } : {}) };
  const dvd = m.get(`${ctl.ide}-0-0`);
  if (dvd && dvd !== 'none' && dvd !== 'emptydrive') info.dvd = dvd;
  for (const [k, v] of m) {
    if (/^Forwarding\(\d+\)$/.test(k)) {
      const [name, proto, hostAddr, hostPort, , guestPort] = v.split(',');
      if (name && (proto === 'tcp' || proto === 'udp')) info.forwards.push({ name, proto, hostAddr: hostAddr ?? '', hostPort: Number(hostPort), guestPort: Number(guestPort) });
    }
    const sn = /^SnapshotName(-[\d-]+)?$/.exec(k);
    if (sn) info.snapshots.push({ name: v, uuid: m.get(`SnapshotUUID${sn[1] ?? ''}`) ?? '' });
  }
  const uart = m.get('uart1');
  const mode = m.get('uartmode1');
  if (uart && uart !== 'off' && mode?.startsWith('file,')) info.serialFile = mode.slice('file,'.length);
  return info;
}

/** `list vms`: `"NAME" {UUID}` per line. */
export function parseListVms(out: string): { name: string; uuid: string }[] {
  const r: { name: string; uuid: string }[] = [];
  for (const line of out.split(/\r?\n/)) {
    const m = /^"(.*)" \{([0-9a-fA-F-]{36})\}\s*$/.exec(line.trim());
    if (m) r.push({ name: m[1]!, uuid: m[2]!.toLowerCase() });
  }
  return r;
}

export interface HddInfo {
  uuid: string;
  /** The parent's UUID for a differencing image; absent for a base ("Parent UUID: base"). */
  parentUuid?: string;
  state?: string;
  /** e.g. "normal (base)", "normal (differencing)", "multiattach". */
  type?: string;
  location: string;
  format?: string;
}

/** `list hdds`: blocks of `Key:   value` lines separated by blank lines. */
export function parseListHdds(out: string): HddInfo[] {
  const r: HddInfo[] = [];
  for (const block of out.split(/\r?\n\s*\r?\n/)) {
    const kv = new Map<string, string>();
    for (const line of block.split(/\r?\n/)) {
      const m = /^\s*([A-Za-z][A-Za-z ]*?):\s*(.*)$/.exec(line);
      if (m) kv.set(m[1]!, m[2]!.trim());
    }
    const uuid = kv.get('UUID');
    const location = kv.get('Location');
    if (!uuid || !location) continue;
    const h: HddInfo = { uuid: uuid.toLowerCase(), location };
    const parent = kv.get('Parent UUID');
    if (parent && parent !== 'base') h.parentUuid = parent.toLowerCase();
    if (kv.get('State')) h.state = kv.get('State')!;
    if (kv.get('Type')) h.type = kv.get('Type')!;
    if (kv.get('Storage format')) h.format = kv.get('Storage format')!;
    r.push(h);
  }
  return r;
}

/** The differencing images on top of a medium (its users: each belongs to a VM or a snapshot). */
export function childrenOf(hdds: readonly HddInfo[], location: string): HddInfo[] {
  const base = hdds.find((h) => h.location === location);
  return base ? hdds.filter((h) => h.parentUuid === base.uuid) : [];
}

/** `VBoxManage --version`: e.g. `7.0.14r161095` -> 7.0.14. */
export function parseVersion(out: string): string | undefined {
  return /(\d+\.\d+\.\d+)/.exec(out)?.[1];
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The first `VBoxManage: error:` line of stderr (without the prefix), or its first line. */
export function firstVBoxError(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const e = lines.find((l) => /^VBoxManage(\.exe)?: error:/.test(l) && !/Details: code/.test(l));
  return (e ?? lines[0] ?? '(no message)').replace(/^VBoxManage(\.exe)?: error:\s*/, '');
}

/** Map a failed VBoxManage call to a typed error: the known cases by their text, else VBOX_COMMAND_FAILED. */
export function vboxError(args: readonly string[], stderr: string, what?: string): KumoError {
  const msg = firstVBoxError(stderr);
  const op = what ?? `VBoxManage ${args[0] ?? ''}`;
  const details = { argv: [VBOXMANAGE, ...args], stderr: stderr.slice(0, 4000) };
  if (/already locked (for|by) a session|is locked for a session|VBOX_E_INVALID_OBJECT_STATE.*lock|session.*(is )?locked/i.test(stderr))
    return new ConflictError('VBOX_SESSION_LOCKED', `${op}: the machine is locked by another VirtualBox session: ${msg}`, {
      hint: 'another program (the VirtualBox GUI, another VBoxManage) holds the machine; close it, or wait and try again',
      details,
    });
  if (/kernel driver (is )?(either )?not (loaded|installed)|VERR_VM_DRIVER_NOT_INSTALLED|VERR_VM_DRIVER_OPEN_ERROR|vboxdrv/i.test(stderr))
    return new EnvironmentError('VBOX_KERNEL_DRIVER', `${op}: the VirtualBox kernel driver is not loaded: ${msg}`, {
      hint: "load it (as root: 'modprobe vboxdrv', or '/sbin/vboxconfig' to build it for this kernel); with Secure Boot the module must be signed",
      details,
    });
  if (/E_ACCESSDENIED[\s\S]*(EnableStaticIPConfig|VBoxManageHostonly)|not within the allowed range|outside the allowed range|networks\.conf|allowed ranges/i.test(stderr))
    return new InvalidInputError('VBOX_HOSTONLY_RANGE', `${op}: VirtualBox refuses that host-only address: ${msg}`, {
      hint: 'since VirtualBox 6.1.28 host-only networks must lie in 192.168.56.0/21; pick an address there, or allow more ranges in /etc/vbox/networks.conf (e.g. "* 10.0.0.0/8")',
      details,
    });
  if (/medium .* is locked|is locked for (reading|writing)|still attached to|has \d+ child media|because it has \d+ (hard disks|child)|in use by|VBOX_E_OBJECT_IN_USE|Cannot (close|delete) medium/i.test(stderr))
    return new ConflictError('VBOX_MEDIUM_IN_USE', `${op}: a disk medium is in use: ${msg}`, {
      hint: "another VM or a snapshot still uses it; see 'VBoxManage list hdds' (In use by VMs)",
      details,
    });
  if (/Could not find a registered machine|VBOX_E_OBJECT_NOT_FOUND.*machine|Could not find a machine/i.test(stderr))
    return new NotFoundError('VBOX_VM_NOT_FOUND', `${op}: VirtualBox has no such machine: ${msg}`, {
      hint: "it was unregistered behind kumo's back: 'kumo repair' or 'kumo delete' the instance",
      details,
    });
  return new KumoError('VBOX_COMMAND_FAILED', 'external', `${op} failed: ${msg}`, { hint: 'run with --debug to see every VBoxManage call; the same command by hand shows the same error', details });
}
