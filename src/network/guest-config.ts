/**
 * What a guest on private networks is given (pure): the NoCloud network-config (v2) that puts
 * each private NIC's address on the NIC with that MAC and keeps the first, user-mode NIC on DHCP
 * (outbound access and kumo's ssh forward), and the name -> address block of /etc/hosts with the
 * guest command that replaces it in place (pushed over ssh while the guest runs, ./hosts-sync.ts).
 */
import { stringify } from 'yaml';
import type { NetworkAttachment } from './store.js';

/** The network-config (version 2) for an instance whose first NIC has `userMac`. */
export function networkConfigV2(userMac: string, attachments: readonly NetworkAttachment[]): string {
  const ethernets: Record<string, unknown> = {
    // The user-mode NIC stays as cloud-init's default would make it: DHCP from QEMU's slirp.
    user0: { match: { macaddress: userMac }, dhcp4: true },
  };
  attachments.forEach((a, i) => {
    ethernets[`kumo${i + 1}`] = { match: { macaddress: a.mac }, dhcp4: false, dhcp6: false, addresses: [`${a.address}/${a.prefix}`] };
  });
  return '# written by kumo: the user-mode NIC on DHCP, each private network NIC by its MAC\n' + stringify({ version: 2, ethernets }, { lineWidth: 0 });
}

export const HOSTS_BEGIN = (network: string) => `# BEGIN kumo network ${network}`;
export const HOSTS_END = (network: string) => `# END kumo network ${network}`;

/** The /etc/hosts block of one network: one `ADDRESS NAME` line per member, between markers. */
export function hostsBlock(network: string, table: readonly { name: string; address: string }[]): string {
  return [HOSTS_BEGIN(network), ...table.map((e) => `${e.address} ${e.name}`), HOSTS_END(network)].join('\n') + '\n';
}

/**
 * Replace (or add) the network's block in `hosts` (pure; what the guest command does, for tests
 * and for reading back). Lines outside the markers are kept as they are.
 */
export function replaceHostsBlock(hosts: string, network: string, block: string): string {
  const lines = hosts.split('\n');
  const out: string[] = [];
  let inside = false;
  for (const l of lines) {
    if (l === HOSTS_BEGIN(network)) inside = true;
    else if (l === HOSTS_END(network)) inside = false;
    else if (!inside) out.push(l);
  }
  const kept = out.join('\n');
  return kept === '' || kept.endsWith('\n') ? kept + block : kept + '\n' + block;
}

/**
 * The guest command (argv, run under sudo) that replaces the network's block of /etc/hosts with
 * stdin: the rest of the file is kept, the new file is written beside it and renamed into place.
 * The network name is checked by the caller (names are [a-z0-9-], safe in the sed pattern).
 */
export function hostsUpdateArgv(network: string): string[] {
  const script = [
    'set -e',
    'n="$1"',
    't=/etc/hosts.kumo-$$',
    // delete the old block, drop trailing blank lines, append the new block from stdin
    `sed -e "/^# BEGIN kumo network $n\\$/,/^# END kumo network $n\\$/d" /etc/hosts > "$t"`,
    'cat >> "$t"',
    'chmod 644 "$t"',
    'mv -f "$t" /etc/hosts',
  ].join('\n');
  return ['sudo', '-n', 'sh', '-c', script, 'kumo-hosts', network];
}
