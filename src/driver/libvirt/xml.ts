/**
 * libvirt domain and volume XML, built as pure functions (no I/O) so they are unit-tested on their
 * own, and kumo's metadata read back from a domain's XML.
 *
 * The domain mirrors what the QEMU driver runs: q35, virtio disk (the qcow2 overlay on the
 * read-only base, as a file or as a storage-pool volume with a backing store), the cloud-init seed
 * as a second, read-only virtio disk (the same hardware as the QEMU driver gives: a SATA cdrom
 * needs ahci + sr_mod, which minimal guest kernels may lack), a virtio NIC (user-mode networking, whose forwards kumo adds through
 * the monitor once the domain runs; or a libvirt network such as `default`), virtio-rng, the
 * serial console to a file, no graphics. `type='qemu'` (TCG) or `type='kvm'` as the accelerator
 * probe decides.
 *
 * kumo's own facts live in `<metadata>` under the KUMO_NS namespace; a domain without them is not
 * kumo's, and kumo never touches it.
 */
import { InvalidInputError } from '../../core/errors.js';
import { child, childrenNamed, localName, nsUri, parseXml, path, type XmlElement } from './xmlparse.js';

/** The namespace of kumo's element inside a domain's `<metadata>`. */
export const KUMO_NS = 'https://kumo.dev/xmlns/libvirt/1';
/** The prefix kumo writes (libvirt keeps one prefix per namespace). */
export const KUMO_NS_PREFIX = 'kumo';

export type DiskSource =
  | { kind: 'file'; path: string; format: 'qcow2' | 'raw' }
  | { kind: 'volume'; pool: string; volume: string; format: 'qcow2' | 'raw' };

export type NetworkSpec =
  /** QEMU user-mode networking (SLIRP); forwards are added through the monitor after start. */
  | { kind: 'user' }
  /** A libvirt virtual network (NAT), address from its DHCP leases. */
  | { kind: 'network'; name: string }
  /** A host bridge. */
  | { kind: 'bridge'; name: string };

/** Parse a network option: 'user', 'network:NAME' (or a bare NAME), 'bridge:NAME'. */
export function parseNetworkOption(v: unknown): NetworkSpec {
  if (v === undefined || v === null || v === '' || v === 'user') return { kind: 'user' };
  if (typeof v === 'string') {
    const m = /^(network|bridge):(.+)$/.exec(v);
    const [kind, name] = m ? [m[1] as 'network' | 'bridge', m[2]!] : (['network', v] as const);
    if (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) return { kind, name };
  }
  throw new InvalidInputError('LIBVIRT_NETWORK_INVALID', `'${String(v)}' is not a libvirt network choice`, { hint: "use 'user' (forwarded ports), 'network:NAME' (a libvirt network such as default) or 'bridge:NAME'" });
}

/** Check a storage pool name (it goes into virsh's argv and the domain XML). */
export function parsePoolOption(v: unknown): string {
  if (typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/.test(v)) return v;
  throw new InvalidInputError('LIBVIRT_POOL_INVALID', `${JSON.stringify(v)} is not a libvirt storage pool name`, {
    hint: "give the name of a pool on the libvirt host (see 'virsh pool-list --all'), e.g. default",
  });
}

/** kumo's facts about a domain, kept in its `<metadata>`. */
export interface KumoMetadata {
  /** The kumo instance name. */
  instance: string;
  /** KUMO_HOME of the kumo that made it (several homes may share one libvirtd). */
  home: string;
  /** The instance directory. */
  dir: string;
  /** The host kumo ran on when it defined the domain (for remote URIs). */
  client?: string;
  /** cloud-init instance-id, when known. */
  instanceId?: string;
  /** ISO 8601 time of the first definition. */
  created?: string;
  /** Volumes kumo created for this instance (removed on delete); never the base. */
  volumes?: { pool: string; name: string }[];
  /** Host port forwarded to the guest's ssh (user networking). */
  sshPort?: number;
}

export interface DomainSpec {
  name: string;
  uuid?: string;
  /** 'kvm' when the KVM probe passed, else 'qemu' (TCG). */
  type: 'kvm' | 'qemu';
  cpus: number;
  memoryMiB: number;
  firmware?: 'bios' | 'uefi';
  disk: DiskSource;
  seed?: DiskSource;
  mac: string;
  network: NetworkSpec;
  /** File that receives the serial console; a pty when absent (remote hosts). */
  serialLog?: string;
  emulator?: string;
  metadata: KumoMetadata;
}

/** Escape text and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const DOMAIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Problems with a spec, as messages (empty when it is fine). Names reach XML and virsh argv. */
export function domainSpecProblems(s: DomainSpec): string[] {
  const p: string[] = [];
  if (!DOMAIN_NAME_RE.test(s.name)) p.push(`domain name '${s.name}' must be 1-63 letters, digits, '_', '.', '+' or '-'`);
  if (s.uuid !== undefined && !UUID_RE.test(s.uuid)) p.push(`uuid '${s.uuid}' is not a UUID`);
  if (!Number.isInteger(s.cpus) || s.cpus < 1 || s.cpus > 512) p.push(`cpus ${s.cpus} is out of range`);
  if (!Number.isInteger(s.memoryMiB) || s.memoryMiB < 16) p.push(`memory ${s.memoryMiB} MiB is out of range`);
  if (!MAC_RE.test(s.mac)) p.push(`MAC address '${s.mac}' is not valid`);
  for (const [what, d] of [['disk', s.disk], ['seed', s.seed]] as const) {
    if (!d) continue;
    if (d.kind === 'file' && !d.path.startsWith('/')) p.push(`${what} path '${d.path}' must be absolute`);
    if (d.kind === 'volume' && (!d.pool || !d.volume)) p.push(`${what} volume needs a pool and a name`);
  }
  if (s.serialLog !== undefined && !s.serialLog.startsWith('/')) p.push(`serial log path '${s.serialLog}' must be absolute`);
  if (s.network.kind !== 'user' && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s.network.name)) p.push(`network name '${s.network.name}' is not valid`);
  return p;
}

function diskXml(d: DiskSource, opts: { device: 'disk' | 'cdrom'; target: string; bus: string; readonly?: boolean; raw?: boolean; boot?: number }): string[] {
  const type = d.kind === 'file' ? 'file' : 'volume';
  const src = d.kind === 'file' ? `<source file='${xmlEscape(d.path)}'/>` : `<source pool='${xmlEscape(d.pool)}' volume='${xmlEscape(d.volume)}'/>`;
  const driver = opts.device === 'cdrom' || opts.raw ? `<driver name='qemu' type='raw'/>` : `<driver name='qemu' type='${d.format}' discard='unmap' cache='writeback'/>`;
  return [
    `    <disk type='${type}' device='${opts.device}'>`,
    `      ${driver}`,
    `      ${src}`,
    `      <target dev='${opts.target}' bus='${opts.bus}'/>`,
    ...(opts.readonly ? ['      <readonly/>'] : []),
    ...(opts.boot !== undefined ? [`      <boot order='${opts.boot}'/>`] : []),
    '    </disk>',
  ];
}

/** kumo's `<metadata>` child element. */
export function metadataXml(m: KumoMetadata, indent = '    '): string {
  const i2 = `${indent}  `;
  const lines = [`${indent}<${KUMO_NS_PREFIX}:instance xmlns:${KUMO_NS_PREFIX}='${KUMO_NS}'>`];
  const field = (k: string, v: string | number | undefined) => {
    if (v !== undefined) lines.push(`${i2}<${KUMO_NS_PREFIX}:${k}>${xmlEscape(String(v))}</${KUMO_NS_PREFIX}:${k}>`);
  };
  field('name', m.instance);
  field('home', m.home);
  field('dir', m.dir);
  field('client', m.client);
  field('instance-id', m.instanceId);
  field('created', m.created);
  field('ssh-port', m.sshPort);
  for (const v of m.volumes ?? []) lines.push(`${i2}<${KUMO_NS_PREFIX}:volume pool='${xmlEscape(v.pool)}' name='${xmlEscape(v.name)}'/>`);
  lines.push(`${indent}</${KUMO_NS_PREFIX}:instance>`);
  return lines.join('\n');
}

/** The domain XML for `virsh define`. Throws InvalidInputError naming every problem. */
export function buildDomainXml(s: DomainSpec): string {
  const problems = domainSpecProblems(s);
  if (problems.length) throw new InvalidInputError('LIBVIRT_SPEC_INVALID', `cannot describe domain '${s.name}': ${problems.join('; ')}`, { hint: 'check the instance settings' });
  const l: string[] = [];
  l.push(`<domain type='${s.type}'>`);
  l.push(`  <name>${xmlEscape(s.name)}</name>`);
  if (s.uuid) l.push(`  <uuid>${s.uuid.toLowerCase()}</uuid>`);
  l.push(`  <title>kumo instance ${xmlEscape(s.metadata.instance)}</title>`);
  l.push('  <metadata>', metadataXml(s.metadata), '  </metadata>');
  l.push(`  <memory unit='MiB'>${s.memoryMiB}</memory>`);
  l.push(`  <vcpu placement='static'>${s.cpus}</vcpu>`);
  if (s.firmware === 'uefi') {
    l.push(`  <os firmware='efi'>`, `    <type arch='x86_64' machine='q35'>hvm</type>`);
    l.push(`    <firmware>`, `      <feature enabled='no' name='secure-boot'/>`, `    </firmware>`);
  } else {
    l.push('  <os>', `    <type arch='x86_64' machine='q35'>hvm</type>`);
  }
  l.push('  </os>');
  l.push('  <features>', '    <acpi/>', '    <apic/>', '  </features>');
  // KVM: the host CPU as is; TCG: everything QEMU can emulate (-cpu max), as the QEMU driver does.
  l.push(s.type === 'kvm' ? `  <cpu mode='host-passthrough' check='none'/>` : `  <cpu mode='maximum' check='none'/>`);
  l.push(`  <clock offset='utc'/>`);
  l.push('  <on_poweroff>destroy</on_poweroff>', '  <on_reboot>restart</on_reboot>', '  <on_crash>destroy</on_crash>');
  l.push('  <devices>');
  if (s.emulator) l.push(`    <emulator>${xmlEscape(s.emulator)}</emulator>`);
  l.push(...diskXml(s.disk, { device: 'disk', target: 'vda', bus: 'virtio', boot: 1 }));
  if (s.seed) l.push(...diskXml(s.seed, { device: 'disk', target: 'vdb', bus: 'virtio', readonly: true, raw: true }));
  switch (s.network.kind) {
    case 'user':
      l.push(`    <interface type='user'>`);
      break;
    case 'network':
      l.push(`    <interface type='network'>`, `      <source network='${xmlEscape(s.network.name)}'/>`);
      break;
    case 'bridge':
      l.push(`    <interface type='bridge'>`, `      <source bridge='${xmlEscape(s.network.name)}'/>`);
      break;
  }
  l.push(`      <mac address='${s.mac.toLowerCase()}'/>`, `      <model type='virtio'/>`, '    </interface>');
  if (s.serialLog) {
    l.push(`    <serial type='file'>`, `      <source path='${xmlEscape(s.serialLog)}' append='off'/>`, `      <target port='0'/>`, '    </serial>');
    l.push(`    <console type='file'>`, `      <source path='${xmlEscape(s.serialLog)}' append='off'/>`, `      <target type='serial' port='0'/>`, '    </console>');
  } else {
    l.push(`    <serial type='pty'>`, `      <target port='0'/>`, '    </serial>', `    <console type='pty'>`, `      <target type='serial' port='0'/>`, '    </console>');
  }
  l.push(`    <controller type='usb' model='none'/>`);
  l.push(`    <rng model='virtio'>`, `      <backend model='random'>/dev/urandom</backend>`, '    </rng>');
  l.push(`    <memballoon model='none'/>`);
  l.push('  </devices>');
  l.push('</domain>');
  return `${l.join('\n')}\n`;
}

/** A qcow2 volume whose backing store is `backing` (uvtool's way of cloning an image in a pool). */
export function buildVolumeXml(v: { name: string; capacityBytes?: number; format: 'qcow2' | 'raw'; backing?: { path: string; format: 'qcow2' | 'raw' } }): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(v.name)) throw new InvalidInputError('LIBVIRT_SPEC_INVALID', `volume name '${v.name}' is not valid`, { hint: "use letters, digits, '_', '.', '+' and '-'" });
  const l = ['<volume>', `  <name>${xmlEscape(v.name)}</name>`];
  if (v.capacityBytes !== undefined) l.push(`  <capacity unit='bytes'>${v.capacityBytes}</capacity>`);
  l.push('  <target>', `    <format type='${v.format}'/>`, '  </target>');
  if (v.backing) l.push('  <backingStore>', `    <path>${xmlEscape(v.backing.path)}</path>`, `    <format type='${v.backing.format}'/>`, '  </backingStore>');
  l.push('</volume>');
  return `${l.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Reading back

/** kumo's element inside `<metadata>`, if any. */
function kumoElement(dom: XmlElement): XmlElement | undefined {
  return child(dom, 'metadata')?.children.find((c) => localName(c) === 'instance' && nsUri(c) === KUMO_NS);
}

/** kumo's metadata from a domain's XML; undefined when the domain is not kumo's. */
export function parseKumoMetadata(domainXml: string | XmlElement): KumoMetadata | undefined {
  const dom = typeof domainXml === 'string' ? parseXml(domainXml) : domainXml;
  const k = kumoElement(dom);
  if (!k) return undefined;
  const f = (n: string) => k.children.find((c) => localName(c) === n)?.text.trim();
  const instance = f('name');
  const home = f('home');
  const dir = f('dir');
  if (!instance || !home || !dir) return undefined;
  const m: KumoMetadata = { instance, home, dir };
  const client = f('client');
  if (client) m.client = client;
  const iid = f('instance-id');
  if (iid) m.instanceId = iid;
  const created = f('created');
  if (created) m.created = created;
  const port = Number(f('ssh-port'));
  if (Number.isInteger(port) && port > 0) m.sshPort = port;
  const vols = k.children.filter((c) => localName(c) === 'volume' && c.attrs.pool && c.attrs.name).map((c) => ({ pool: c.attrs.pool!, name: c.attrs.name! }));
  if (vols.length) m.volumes = vols;
  return m;
}

/** What kumo needs from a defined domain: name, uuid, type, disks and the first NIC. */
export interface DomainFacts {
  name: string;
  uuid?: string;
  type?: string;
  /** Disk and cdrom sources: a file path, or pool/volume. */
  disks: { device: string; file?: string; pool?: string; volume?: string; target?: string }[];
  mac?: string;
  interfaceType?: string;
  networkName?: string;
  serialLog?: string;
  nvram?: string;
  metadata?: KumoMetadata;
}

export function parseDomainFacts(domainXml: string): DomainFacts {
  const dom = parseXml(domainXml);
  const devices = child(dom, 'devices');
  const nic = child(devices, 'interface');
  const facts: DomainFacts = {
    name: child(dom, 'name')?.text.trim() ?? '',
    disks: childrenNamed(devices, 'disk').map((d) => {
      const s = child(d, 'source');
      return {
        device: d.attrs.device ?? 'disk',
        ...(s?.attrs.file ? { file: s.attrs.file } : {}),
        ...(s?.attrs.pool ? { pool: s.attrs.pool } : {}),
        ...(s?.attrs.volume ? { volume: s.attrs.volume } : {}),
        ...(child(d, 'target')?.attrs.dev ? { target: child(d, 'target')!.attrs.dev } : {}),
      };
    }),
  };
  const uuid = child(dom, 'uuid')?.text.trim();
  if (uuid) facts.uuid = uuid;
  if (dom.attrs.type) facts.type = dom.attrs.type;
  const mac = child(nic, 'mac')?.attrs.address;
  if (mac) facts.mac = mac;
  if (nic?.attrs.type) facts.interfaceType = nic.attrs.type;
  const net = child(nic, 'source')?.attrs.network;
  if (net) facts.networkName = net;
  const serial = path(devices, 'serial', 'source')?.attrs.path;
  if (serial) facts.serialLog = serial;
  const nvram = path(dom, 'os', 'nvram')?.text.trim();
  if (nvram) facts.nvram = nvram;
  const meta = parseKumoMetadata(dom);
  if (meta) facts.metadata = meta;
  return facts;
}
