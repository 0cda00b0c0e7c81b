/**
 * Private networks between instances (docs/networks.md): the use cases the CLI and the library
 * call. The instance layer attaches instances (src/instance/networks.ts).
 */
import type { KumoPaths } from '../config/paths.js';
import { parseSubnet, subnetSize } from './cidr.js';
import { createNetwork as create, listNetworks, networkFiles, networkMembers, readNetwork, removeNetwork as remove, type CreateNetworkOptions, type NetworkRecord } from './store.js';
import { stopSwitch, switchState, type SwitchState } from './switch.js';

export { AddressPoolExhaustedError, NetworkInUseError, NetworkNotFoundError, SubnetOverlapError, type NetworkAttachment, type NetworkRecord } from './store.js';
export { BadSubnetError } from './cidr.js';

export interface NetworkInfo {
  name: string;
  subnet: string;
  created: string;
  mode: NetworkRecord['mode'];
  /** Host addresses the subnet has, and how many are given out. */
  addresses: { total: number; used: number };
  /** Its members (instances that exist) with their address and MAC there. */
  members: { instance: string; address: string; mac: string }[];
  /** The VDE switch, as found on the host now. */
  switch: SwitchState & { socket: string };
}

async function info(paths: KumoPaths, rec: NetworkRecord): Promise<NetworkInfo> {
  const f = networkFiles(paths, rec.name);
  const members = await networkMembers(paths, rec);
  return {
    name: rec.name,
    subnet: rec.subnet,
    created: rec.created,
    mode: rec.mode,
    addresses: { total: subnetSize(parseSubnet(rec.subnet)) - 2, used: members.length },
    members: members.map((m) => ({ instance: m, address: rec.leases[m]!.address, mac: rec.leases[m]!.mac })),
    switch: { ...(await switchState(f)), socket: f.socket },
  };
}

/** Make a private network (`kumo network create NAME [--subnet CIDR]`). */
export async function createNetwork(paths: KumoPaths, name: string, o: CreateNetworkOptions = {}): Promise<NetworkInfo> {
  return info(paths, await create(paths, name, o));
}

/** Every network with its members and its switch's state (`kumo network list`). */
export async function networkList(paths: KumoPaths): Promise<NetworkInfo[]> {
  return Promise.all((await listNetworks(paths)).map((r) => info(paths, r)));
}

/** One network (`kumo network info NAME`). */
export async function networkInfo(paths: KumoPaths, name: string): Promise<NetworkInfo> {
  return info(paths, await readNetwork(paths, name));
}

/** Remove a network no instance is on (NetworkInUseError names them); its switch is stopped. */
export async function removeNetwork(paths: KumoPaths, name: string, o: { signal?: AbortSignal } = {}): Promise<void> {
  await remove(paths, name, { ...o, beforeRemove: async (f) => void (await stopSwitch(f)) });
}
