// The libvirt backend: domain XML builder, virsh calls, the driver, pools, de-sync and disk listing.
import { registerDriver } from '../driver.js';
import type { KumoPaths } from '../../config/paths.js';
import { LibvirtDriver } from './driver.js';
import { libvirtDisks } from './sync.js';
import { registerDiskSource } from '../../image/index.js';

export {
  LibvirtDriver,
  libvirtOptions,
  libvirtFiles,
  parseDomifaddr,
  ownedBy,
  defaultVolumes,
  DomainNameTakenError,
  poolRequiredError,
  USER_NETDEV,
  type LibvirtOptions,
} from './driver.js';
export { Virsh, defaultUri, parseUri, isLocalUri, reachHost, connectionError, firstError, LibvirtUnavailableError, DomainNotFoundError, type ParsedUri } from './virsh.js';
export {
  buildDomainXml,
  buildVolumeXml,
  metadataXml,
  parseKumoMetadata,
  parseDomainFacts,
  domainSpecProblems,
  xmlEscape,
  parseNetworkOption,
  parsePoolOption,
  KUMO_NS,
  type DomainSpec,
  type DiskSource,
  type NetworkSpec,
  type KumoMetadata,
  type DomainFacts,
} from './xml.js';
export { parseXml, type XmlElement } from './xmlparse.js';
export { prepareVolumes, removeVolumes, requirePool, baseVolumeName } from './pool.js';
export { listKumoDomains, libvirtInstances, findDesync, repairDesync, removeOrphanDomain, rememberUri, rememberedUris, libvirtDisks, type KumoDomain, type Desync, type LibvirtInstanceRef } from './sync.js';

let registered = false;

/**
 * Register the libvirt driver under 'libvirt', and its domains' disks with the image store's
 * in-use rule (`registerDiskSource`), so `kumo image rm/prune` see images that libvirt domains
 * use. Idempotent; importing this module does it.
 */
export function registerLibvirt(): void {
  registerDriver('libvirt', () => new LibvirtDriver());
  if (registered) return;
  registered = true;
  registerDiskSource((paths: KumoPaths) => libvirtDisks(paths));
}

registerLibvirt();
