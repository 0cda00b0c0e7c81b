/**
 * The CernVM context layout (the context ISO CernVM-Launch / libcernvm attach to a VirtualBox VM),
 * as `--seed-format cernvm`: exactly
 *
 *   ec2/latest/meta-data.json      EC2 meta-data (instance-id, hostnames, public keys)
 *   ec2/latest/user-data           the user data
 *   openstack/latest/meta_data.json  OpenStack meta-data (uuid, name, hostname, public_keys)
 *   openstack/latest/user_data     the same user data, byte for byte
 *   readme                         what the disc is and where the files are
 *
 * and nothing else (no network_data.json or vendor data: the CernVM layout has none; a spec that
 * asks for them is refused, not silently dropped). Volume label `config-2`, so cloud-init's
 * ConfigDrive data source finds it on any guest and any driver, and CernVM's amiconfig reads the
 * ec2 pair.
 */
import { ValidationError } from '../core/errors.js';
import type { IsoFile } from './iso.js';

export const CERNVM_VOLUME_ID = 'config-2';

/** The five paths of the CernVM context layout, in the order they are written. */
export const CERNVM_PATHS = ['ec2/latest/meta-data.json', 'ec2/latest/user-data', 'openstack/latest/meta_data.json', 'openstack/latest/user_data', 'readme'] as const;

export interface CernvmContext {
  instanceId: string;
  hostname: string;
  /** OpenSSH public keys (one line each). */
  keys: string[];
  /** Extra meta-data keys (strings kept, other values as JSON). */
  meta: Record<string, unknown>;
  userData: string;
  networkConfig?: string;
  vendorData?: string;
}

export function cernvmReadme(instanceId: string): string {
  return [
    'CernVM context disc (made by kumo, --seed-format cernvm)',
    '',
    `instance-id: ${instanceId}`,
    '',
    'ec2/latest/meta-data.json        EC2-style meta-data',
    'ec2/latest/user-data             user data',
    'openstack/latest/meta_data.json  OpenStack-style meta-data',
    'openstack/latest/user_data       the same user data',
    '',
    'cloud-init reads it as a ConfigDrive (label config-2); CernVM amiconfig reads the ec2 files.',
    '',
  ].join('\n');
}

/** The files of a CernVM context disc (pure). */
export function cernvmFiles(c: CernvmContext): IsoFile[] {
  const refused: { path: string; message: string; hint: string }[] = [];
  if (c.networkConfig !== undefined) refused.push({ path: 'networkConfig', message: 'the CernVM context layout has no network configuration file', hint: 'use --seed-format configdrive (network_data.json) or nocloud (network-config)' });
  if (c.vendorData !== undefined) refused.push({ path: 'vendorData', message: 'the CernVM context layout has no vendor data file', hint: 'put it into the user data, or use --seed-format configdrive or nocloud' });
  if (refused.length) throw new ValidationError('seed', refused);
  const publicKeys: Record<string, string> = {};
  c.keys.forEach((k, i) => (publicKeys[i === 0 ? 'kumo' : `kumo-${i}`] = k));
  const extra = Object.entries(c.meta);
  const openstack: Record<string, unknown> = {
    uuid: c.instanceId,
    name: c.hostname.split('.')[0],
    hostname: c.hostname,
    availability_zone: 'kumo',
    launch_index: 0,
    public_keys: publicKeys,
    ...(extra.length ? { meta: Object.fromEntries(extra.map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])) } : {}),
  };
  const ec2: Record<string, unknown> = {
    'instance-id': c.instanceId,
    hostname: c.hostname,
    'local-hostname': c.hostname,
    'ami-launch-index': 0,
    'public-keys': Object.fromEntries(c.keys.map((k, i) => [String(i), { 'openssh-key': k }])),
  };
  return [
    { path: CERNVM_PATHS[0], data: JSON.stringify(ec2, null, 2) + '\n' },
    { path: CERNVM_PATHS[1], data: c.userData },
    { path: CERNVM_PATHS[2], data: JSON.stringify(openstack, null, 2) + '\n' },
    { path: CERNVM_PATHS[3], data: c.userData },
    { path: CERNVM_PATHS[4], data: cernvmReadme(c.instanceId) },
  ];
}
