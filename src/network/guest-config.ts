/**
 * What a guest on private networks is given (pure): the NoCloud network-config (v2) that puts
 * each private NIC's address on the NIC with that MAC and keeps the first, user-mode NIC on DHCP
 * (outbound access and kumo's ssh forward), and the name -> address block of /etc/hosts with the
 * guest command that replaces it in place (pushed over ssh while the guest runs, ./hosts-sync.ts).
 */
import { stringify } from 'yaml';
import type { NetworkAttachment } from './store.js';

/** The guest's name of the user-mode NIC and of the NIC on the Nth private network (1-based). */
export const USER_NIC_NAME = 'user0';
export const privateNicName = (n: number): string => `net${n}`;

/**
 * The network-config (version 2) for an instance whose first NIC has `userMac`.
 *
 * Every NIC is matched by its MAC *and given a name* (`set-name`: user0, net1, net2, ...). Without
 * set-name, cloud-init (22.4, networkd renderer) writes `Name=` the kernel name the NIC has at the
 * moment cloud-init-local looks, beside the MAC: a NIC that udev renames after that (eth0 ->
 * enp0s2, a race a loaded host loses now and then) matches no file and is never configured, and
 * a guest came up with no network at all that way. With set-name cloud-init waits for each MAC's
 * device, renames it itself on every boot and matches that name, so the result does not depend on
 * udev's timing (Lima and cloud-init's own fallback config do the same).
 */
export function networkConfigV2(userMac: string, attachments: readonly NetworkAttachment[]): string {
  const ethernets: Record<string, unknown> = {
    // The user-mode NIC stays as cloud-init's default would make it: DHCP from QEMU's slirp.
    [USER_NIC_NAME]: { match: { macaddress: userMac }, 'set-name': USER_NIC_NAME, dhcp4: true },
  };
  attachments.forEach((a, i) => {
    const name = privateNicName(i + 1);
    ethernets[name] = { match: { macaddress: a.mac }, 'set-name': name, dhcp4: false, dhcp6: false, addresses: [`${a.address}/${a.prefix}`] };
  });
  return '# written by kumo: each NIC by its MAC, named user0 (user-mode, DHCP), net1, net2, ... (private networks, static)\n' + stringify({ version: 2, ethernets }, { lineWidth: 0 });
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
