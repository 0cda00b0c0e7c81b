// The libvirt backend: domain XML builder, virsh calls, the driver, pools, de-sync and disk listing.
import { registerBackend } from '../registry.js';
import { libvirtBackend } from './backend.js';

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

export { LIBVIRT_OPTION_FIELDS } from './options.js';
export { libvirtBackend } from './backend.js';

/**
 * Register the libvirt backend: the driver under 'libvirt', its spec fields, and its domains'
 * disks with the image store's in-use rule. Idempotent. `registerBuiltinDrivers()` does the same
 * for every built-in backend; importing this module registers nothing.
 */
export function registerLibvirt(): void {
  registerBackend(libvirtBackend);
}
