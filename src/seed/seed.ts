/**
 * cloud-init seeds: NoCloud (volume label `cidata`) and ConfigDrive v2 (label `config-2`), written
 * with the native ISO writer. See docs/seeds.md.
 *
 * NoCloud:    user-data, meta-data (instance-id, local-hostname, extra keys),
 *             optional network-config and vendor-data.
 * ConfigDrive: openstack/latest/meta_data.json (uuid, hostname, name, public_keys, meta),
 *             openstack/latest/user_data, openstack/latest/network_data.json (JSON only),
 *             openstack/latest/vendor_data.json, and the EC2 pair as CernVM-Launch writes it:
 *             ec2/latest/meta-data.json and ec2/latest/user-data.
 * CernVM:     the CernVM context layout exactly (./cernvm.ts): the ec2 and openstack pairs and a readme.
 */
import { stringify } from 'yaml';
import { ValidationError, type ValidationIssue } from '../core/errors.js';
import { SSH_PUBLIC_KEY_RE, USER_NAME_RE } from '../core/names.js';
import { buildIso, writeIso, type IsoFile } from './iso.js';
import { composeUserData, parseCloudConfig } from './userdata.js';
import { cernvmFiles, CERNVM_VOLUME_ID, type CernvmContext } from './cernvm.js';

export interface HostKey {
  type: 'ed25519' | 'ecdsa' | 'rsa';
  privateKey: string;
  publicKey: string;
}

export interface SeedSpec {
  /** default 'nocloud'; 'cernvm' is the CernVM context layout (./cernvm.ts) */
  format?: 'nocloud' | 'configdrive' | 'cernvm';
  /** Every instance gets its own; cloud-init treats a new id as a new instance. */
  instanceId: string;
  hostname?: string;
  /** The account kumo creates (default 'kumo'): passwordless sudo, bash, the ssh keys. */
  user?: string;
  sshAuthorizedKeys?: string[];
  /** Written as cloud-config ssh_keys so the host key is known before the first connection. */
  hostKeys?: HostKey[];
  /** The user's own user-data, any cloud-init format. */
  userData?: string;
  /** Extra meta-data keys. */
  metaData?: Record<string, unknown>;
  /** NoCloud: network-config (v1/v2 YAML). ConfigDrive: network_data.json (JSON). */
  networkConfig?: string;
  vendorData?: string;
  mtime?: Date;
  /** Shared folders the guest mounts at boot. */
  mounts?: SeedMount[];
  /** The uid of kumo's account in the guest (shared folders: the host user's, so the guest user owns what the host user owns). */
  userUid?: number;
  /** Names used in error messages for userData / networkConfig (e.g. the file they came from). */
  userDataSource?: string;
  networkConfigSource?: string;
}

/** A shared folder the guest mounts at boot (cloud-config `mounts:`, one /etc/fstab line each). */
export interface SeedMount {
  /** The device tag (virtiofs tag or 9p mount_tag). */
  tag: string;
  /** Absolute guest path, without blanks (config/mounts.ts checks it). */
  guest: string;
  type: 'virtiofs' | '9p';
  readOnly: boolean;
}

/** The fstab options of a shared folder: never holds up the boot (nofail), read-only when asked. */
export function seedMountEntry(m: SeedMount): string[] {
  const opts = m.type === 'virtiofs' ? ['defaults'] : ['trans=virtio', 'version=9p2000.L', 'msize=262144', 'cache=mmap'];
  opts.push('nofail');
  if (m.readOnly) opts.push('ro');
  return [m.tag, m.guest, m.type, opts.join(','), '0', '0'];
}

export const DEFAULT_SEED_USER = 'kumo';

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const INSTANCE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Check a seed spec; reports every problem at once. */
export function validateSeedSpec(spec: SeedSpec): void {
  const issues: ValidationIssue[] = [];
  if (spec.format !== undefined && spec.format !== 'nocloud' && spec.format !== 'configdrive' && spec.format !== 'cernvm')
    issues.push({ path: 'format', message: `unknown seed format '${String(spec.format)}'`, hint: 'use nocloud, configdrive or cernvm' });
  if (typeof spec.instanceId !== 'string' || !INSTANCE_ID_RE.test(spec.instanceId))
    issues.push({ path: 'instanceId', message: `'${String(spec.instanceId)}' is not a valid instance id`, hint: 'letters, digits and . _ : -, at most 128, starting with a letter or digit' });
  if (spec.hostname !== undefined && !HOSTNAME_RE.test(spec.hostname))
    issues.push({ path: 'hostname', message: `'${spec.hostname}' is not a valid host name`, hint: 'letters, digits and -, in dot-separated labels of at most 63' });
  if (spec.user !== undefined && !USER_NAME_RE.test(spec.user))
    issues.push({ path: 'user', message: `'${spec.user}' is not a valid user name`, hint: 'lower-case letters, digits, _ and -, starting with a letter or _' });
  (spec.sshAuthorizedKeys ?? []).forEach((k, i) => {
    if (typeof k !== 'string' || !SSH_PUBLIC_KEY_RE.test(k.trim()))
      issues.push({ path: `sshAuthorizedKeys[${i}]`, message: `not an OpenSSH public key: '${String(k).slice(0, 40)}'`, hint: "give one line such as 'ssh-ed25519 AAAA... comment' (the .pub file)" });
  });
  (spec.hostKeys ?? []).forEach((k, i) => {
    if (!['ed25519', 'ecdsa', 'rsa'].includes(k.type)) issues.push({ path: `hostKeys[${i}].type`, message: `unknown host key type '${String(k.type)}'`, hint: 'use ed25519, ecdsa or rsa' });
    if (typeof k.privateKey !== 'string' || !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k.privateKey))
      issues.push({ path: `hostKeys[${i}].privateKey`, message: 'not a PEM/OpenSSH private key', hint: 'give the content of the private key file' });
    if (typeof k.publicKey !== 'string' || !SSH_PUBLIC_KEY_RE.test(k.publicKey.trim()))
      issues.push({ path: `hostKeys[${i}].publicKey`, message: 'not an OpenSSH public key', hint: 'give the content of the .pub file' });
  });
  if (spec.metaData !== undefined && (typeof spec.metaData !== 'object' || spec.metaData === null || Array.isArray(spec.metaData)))
    issues.push({ path: 'metaData', message: 'meta-data must be a mapping of keys' });
  (spec.mounts ?? []).forEach((m, i) => {
    if (typeof m.tag !== 'string' || !/^[A-Za-z0-9_-]{1,31}$/.test(m.tag)) issues.push({ path: `mounts[${i}].tag`, message: `'${String(m.tag)}' is not a mount tag`, hint: 'letters, digits, _ and -, at most 31' });
    if (typeof m.guest !== 'string' || !/^\/[^\s\0]*$/.test(m.guest)) issues.push({ path: `mounts[${i}].guest`, message: `'${String(m.guest)}' is not an absolute path without blanks`, hint: 'e.g. /src' });
    if (m.type !== 'virtiofs' && m.type !== '9p') issues.push({ path: `mounts[${i}].type`, message: `unknown mount type '${String(m.type)}'`, hint: 'virtiofs or 9p' });
  });
  if (spec.userUid !== undefined && (!Number.isInteger(spec.userUid) || spec.userUid < 1000 || spec.userUid > 59999))
    issues.push({ path: 'userUid', message: `${spec.userUid} is not a uid for a login account`, hint: '1000-59999' });
  if (spec.mtime !== undefined && (!(spec.mtime instanceof Date) || Number.isNaN(spec.mtime.getTime())))
    issues.push({ path: 'mtime', message: 'not a valid date' });
  if (issues.length) throw new ValidationError('seed', issues);
}

/** kumo's own cloud-config part for a spec (before merging with the user's user-data). */
export function kumoCloudConfig(spec: SeedSpec): Record<string, unknown> {
  const user: Record<string, unknown> = {
    name: spec.user ?? DEFAULT_SEED_USER,
    gecos: 'kumo',
    sudo: 'ALL=(ALL) NOPASSWD:ALL',
    shell: '/bin/bash',
    lock_passwd: true,
  };
  const keys = (spec.sshAuthorizedKeys ?? []).map((k) => k.trim());
  if (keys.length) user.ssh_authorized_keys = keys;
  if (spec.userUid !== undefined) user.uid = spec.userUid;
  const cc: Record<string, unknown> = {};
  if (spec.hostname) {
    cc.hostname = spec.hostname.split('.')[0];
    if (spec.hostname.includes('.')) cc.fqdn = spec.hostname;
    cc.preserve_hostname = false;
  }
  cc.users = [user];
  if (spec.hostKeys?.length) {
    const sk: Record<string, string> = {};
    for (const k of spec.hostKeys) {
      sk[`${k.type}_private`] = k.privateKey.endsWith('\n') ? k.privateKey : k.privateKey + '\n';
      sk[`${k.type}_public`] = k.publicKey.trim();
    }
    cc.ssh_keys = sk;
    cc.ssh_deletekeys = false;
    // cloud-init (before 23.2) writes the public halves from ssh_keys with mode 0600; OpenSSH makes
    // them 0644, and tools that read them as a user need that. Fixed once cloud-init wrote them.
    cc.runcmd = spec.hostKeys.map((k) => ['chmod', '0644', `/etc/ssh/ssh_host_${k.type}_key.pub`]);
  }
  if (spec.mounts?.length) cc.mounts = spec.mounts.map(seedMountEntry);
  return cc;
}

function networkJson(text: string): string {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return JSON.stringify(v, null, 2) + '\n';
  } catch {
    throw new ValidationError('seed', [
      {
        path: 'networkConfig',
        message: 'a ConfigDrive seed needs network_data.json (OpenStack JSON), and this is not a JSON object',
        hint: 'give OpenStack network_data.json, or use the nocloud format for a network-config v1/v2 YAML',
      },
    ]);
  }
}

/** The files of a seed (pure; validated). */
export function seedFiles(spec: SeedSpec): { files: IsoFile[]; volumeId: string } {
  validateSeedSpec(spec);
  const userData = composeUserData(kumoCloudConfig(spec), spec.userData, spec.userDataSource ?? 'user-data');
  const format = spec.format ?? 'nocloud';
  const extra = spec.metaData ?? {};
  if (format === 'nocloud') {
    const md: Record<string, unknown> = { ...extra, 'instance-id': spec.instanceId };
    if (spec.hostname) md['local-hostname'] = spec.hostname;
    const files: IsoFile[] = [
      { path: 'user-data', data: userData },
      { path: 'meta-data', data: stringify(md, { lineWidth: 0 }) },
    ];
    if (spec.networkConfig !== undefined) {
      // refuse invalid YAML here too, with its position
      parseCloudConfig(spec.networkConfig, spec.networkConfigSource ?? 'network-config');
      files.push({ path: 'network-config', data: spec.networkConfig });
    }
    if (spec.vendorData !== undefined) files.push({ path: 'vendor-data', data: spec.vendorData });
    return { files, volumeId: 'cidata' };
  }
  const keys = (spec.sshAuthorizedKeys ?? []).map((k) => k.trim());
  if (format === 'cernvm') {
    const c: CernvmContext = { instanceId: spec.instanceId, hostname: spec.hostname ?? spec.instanceId, keys, meta: extra, userData };
    if (spec.networkConfig !== undefined) c.networkConfig = spec.networkConfig;
    if (spec.vendorData !== undefined) c.vendorData = spec.vendorData;
    return { files: cernvmFiles(c), volumeId: CERNVM_VOLUME_ID };
  }
  const publicKeys: Record<string, string> = {};
  keys.forEach((k, i) => (publicKeys[i === 0 ? 'kumo' : `kumo-${i}`] = k));
  const hostname = spec.hostname ?? spec.instanceId;
  const meta: Record<string, unknown> = {
    uuid: spec.instanceId,
    name: hostname.split('.')[0],
    hostname,
    availability_zone: 'kumo',
    launch_index: 0,
    public_keys: publicKeys,
    ...(Object.keys(extra).length ? { meta: Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])) } : {}),
  };
  const ec2: Record<string, unknown> = {
    'instance-id': spec.instanceId,
    hostname,
    'local-hostname': hostname,
    'ami-launch-index': 0,
    'public-keys': Object.fromEntries(keys.map((k, i) => [String(i), { 'openssh-key': k }])),
  };
  const files: IsoFile[] = [
    { path: 'openstack/latest/meta_data.json', data: JSON.stringify(meta, null, 2) + '\n' },
    { path: 'openstack/latest/user_data', data: userData },
    { path: 'ec2/latest/meta-data.json', data: JSON.stringify(ec2, null, 2) + '\n' },
    { path: 'ec2/latest/user-data', data: userData },
  ];
  if (spec.networkConfig !== undefined) files.push({ path: 'openstack/latest/network_data.json', data: networkJson(spec.networkConfig) });
  if (spec.vendorData !== undefined) files.push({ path: 'openstack/latest/vendor_data.json', data: JSON.stringify(spec.vendorData) + '\n' });
  return { files, volumeId: 'config-2' };
}

/** The seed image in memory. */
export function buildSeed(spec: SeedSpec): Buffer {
  const { files, volumeId } = seedFiles(spec);
  return buildIso(files, { volumeId, ...(spec.mtime ? { mtime: spec.mtime } : {}) });
}

/** Write the seed image atomically (temp file, fsync, rename). Nothing is written when the spec is invalid. */
export async function writeSeed(spec: SeedSpec, outputPath: string): Promise<void> {
  const { files, volumeId } = seedFiles(spec);
  // 0600: the seed may hold ssh host private keys
  await writeIso(files, outputPath, { volumeId, outputMode: 0o600, ...(spec.mtime ? { mtime: spec.mtime } : {}) });
}
