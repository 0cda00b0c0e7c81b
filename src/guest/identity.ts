/**
 * A clone's own identity, given right after its template's state is restored and before it
 * counts as ready: hostname, machine-id, the ssh host key kumo made for this instance (so the
 * first ssh is still verified strictly), the clock stepped to the host's time, a fresh RNG (host
 * randomness mixed in, then a reseed: by the vmgenid driver where the guest kernel has one, else
 * by the RNDRESEEDCRNG ioctl), no DHCP lease or
 * journal of the template's.
 *
 * The steps run as one shell script through the guest agent (qemu-guest-agent, `guest-exec`):
 * under emulation an ssh handshake costs seconds, the agent a fraction of one. Guests without an
 * agent get the same script over ssh with the template's pinned host key (`identityOverSsh`).
 */
import { randomBytes } from 'node:crypto';
import { KumoError } from '../core/errors.js';
import { GuestAgent } from './agent.js';
import { shellQuote, sshExec, type SshTarget } from './ssh.js';

export interface CloneIdentity {
  hostname: string;
  /** 32 lowercase hex digits. */
  machineId: string;
  /** The instance's ssh host key (OpenSSH private key text) and its public line. */
  hostKey: { type: string; privateKey: string; publicKey: string };
}

export class IdentityError extends KumoError {
  constructor(name: string, why: string) {
    super('IDENTITY_FAILED', 'external', `could not give clone '${name}' its own identity: ${why}`, {
      hint: "the clone is not used; kumo deletes it or boots it cold (see 'kumo logs NAME')",
    });
  }
}

export function newMachineId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The RNG reseed (POSIX sh, sets `rng`), after host randomness was written to /dev/urandom. The
 * kernel reseeds by itself when the vmgenid changes (a clone: a new vmgenid), but only with the
 * vmgenid driver bound, which Debian's cloud kernels lack; else, and after a snapshot's restore
 * (the same vmgenid), it asks for a reseed (RNDRESEEDCRNG), which draws on the pool the host's
 * randomness was just mixed into. Without a reseed two futures of one saved state share a random
 * stream, so the script fails then (a clone is booted instead). `$newgen` is 1 for a clone.
 */
const RNG_RESEED = String.raw`if [ "$newgen" = 1 ] && [ -e /sys/bus/acpi/devices/QEMUVGID:00/driver ]; then rng=vmgenid
elif command -v perl >/dev/null 2>&1 && perl -e 'open(my $f, "<", "/dev/urandom") or die "$!\n"; ioctl($f, 0x5207, 0) or die "RNDRESEEDCRNG: $!\n"'; then rng=ioctl
elif command -v python3 >/dev/null 2>&1 && python3 -c 'import fcntl; fcntl.ioctl(open("/dev/urandom", "rb"), 0x5207)'; then rng=ioctl
else echo "no way to reseed the kernel RNG: no vmgenid driver, and neither perl nor python3 to call RNDRESEEDCRNG" >&2; exit 3
fi
`;

/**
 * The script (POSIX sh). Arguments: the clock for `date -s` (see clockArg), hostname, machine-id, key type,
 * the private key text, the public key line, random text (mixed into the kernel's pool). It prints
 * `identity-ok HOSTNAME rng=vmgenid|ioctl` on success (how the RNG was reseeded), and writes a
 * line saying what happened to the guest's console (a clone's serial log has no boot of its own:
 * its template booted). Under emulation every process costs ~0.1 s, so it starts only three
 * (date, sed, rm), and perl for the reseed where the kernel has no vmgenid driver: the rest are
 * shell builtins writing files (the hostname through /proc/sys/kernel/hostname, which is
 * sethostname).
 */
export const IDENTITY_SCRIPT = String.raw`set -eu
now=$1 hn=$2 mid=$3 kt=$4 key=$5 pub=$6 rnd=$7 newgen=1
date -u -s "$now" >/dev/null
read -r old < /proc/sys/kernel/hostname || old=
printf '%s
' "$hn" > /etc/hostname
printf '%s' "$hn" > /proc/sys/kernel/hostname
if [ -f /etc/hosts ] && [ -n "$old" ] && [ "$old" != "$hn" ]; then
  # twice: a match takes the blank after the name, so "NAME NAME" needs a second pass
  sed -i -e "s/\([[:space:]]\)$old\([[:space:].]\|$\)/\1$hn\2/g" -e "s/\([[:space:]]\)$old\([[:space:].]\|$\)/\1$hn\2/g" /etc/hosts
fi
printf '%s
' "$mid" > /etc/machine-id
[ -L /var/lib/dbus/machine-id ] || { [ -d /var/lib/dbus ] && printf '%s
' "$mid" > /var/lib/dbus/machine-id; } || true
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub /run/systemd/netif/leases/* /var/lib/dhcp/*.leases
umask 077
printf '%s' "$key" > "/etc/ssh/ssh_host_"$kt"_key"
umask 022
printf '%s' "$pub" > "/etc/ssh/ssh_host_"$kt"_key.pub"
printf '%s' "$rnd" > /dev/urandom
${RNG_RESEED}# journald and networkd pick up the new machine-id and lease in the background
if command -v systemctl >/dev/null 2>&1; then
  setsid sh -c 'systemctl --no-block restart systemd-journald; networkctl renew >/dev/null 2>&1' </dev/null >/dev/null 2>&1 &
fi
read -r now_hn < /proc/sys/kernel/hostname
# the clone's serial console has none of the boot (the template booted): one line says what it is
{ printf 'kumo: %s restored from a warm template, with its own identity\n' "$now_hn" > /dev/console; } 2>/dev/null || true
echo "identity-ok $now_hn rng=$rng"
`;

/**
 * After a snapshot's memory was restored (the same machine, an earlier moment): the clock stepped
 * to the host's time and the RNG reseeded, or the guest goes on at the snapshot's time with the
 * random stream it had then. Arguments: the clock for `date -s` (see clockArg), random text. Prints
 * `restored-ok rng=ioctl`, and says so on the guest's console.
 */
export const RESTORED_SCRIPT = String.raw`set -eu
now=$1 rnd=$2 newgen=0
date -u -s "$now" >/dev/null
printf '%s' "$rnd" > /dev/urandom
${RNG_RESEED}{ printf 'kumo: restored from a saved state; clock stepped, RNG reseeded\n' > /dev/console; } 2>/dev/null || true
echo "restored-ok rng=$rng"
`;

/**
 * The clock argument of the scripts, for `date -u -s`. Without an agent: the host's time now
 * (`@SECONDS.NANOS`), late by however long the guest takes to start the script (seconds on a
 * loaded host under emulation). With one: the guest's offset from the host's clock, measured with
 * `guest-get-time` (answered inside the agent, no process), as `now +S.SSS seconds`, which `date`
 * applies at the moment it runs.
 */
async function clockArg(agent?: GuestAgent): Promise<string> {
  if (agent) {
    const t0 = Date.now();
    const guestNs = await agent.execute<number>('guest-get-time').catch(() => undefined);
    const t1 = Date.now();
    if (typeof guestNs === 'number' && Number.isFinite(guestNs)) {
      const offsetSec = ((t0 + t1) / 2 - guestNs / 1e6) / 1000;
      return `now ${offsetSec < 0 ? '-' : '+'}${Math.abs(offsetSec).toFixed(3)} seconds`;
    }
  }
  const now = Date.now();
  return `@${Math.floor(now / 1000)}.${String((now % 1000) * 1_000_000).padStart(9, '0')}`;
}

function scriptArgs(id: CloneIdentity, clock: string): string[] {
  const keyType = id.hostKey.type.replace(/^ssh-/, '');
  return [
    clock,
    id.hostname,
    id.machineId,
    keyType,
    id.hostKey.privateKey.endsWith('\n') ? id.hostKey.privateKey : `${id.hostKey.privateKey}\n`,
    id.hostKey.publicKey.trim() + '\n',
    randomBytes(64).toString('base64'),
  ];
}

/** How the clone's kernel RNG was reseeded: by its vmgenid driver, or by the RNDRESEEDCRNG ioctl. */
export type RngReseed = 'vmgenid' | 'ioctl';

export interface IdentityResult {
  rng: RngReseed;
}

function checkOutput(name: string, id: CloneIdentity, r: { code: number; stdout: string; stderr: string }): IdentityResult {
  if (r.code !== 0) throw new IdentityError(name, `the script exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-400)}`);
  const m = /identity-ok (\S+) rng=(vmgenid|ioctl)/.exec(r.stdout);
  if (!m || m[1] !== id.hostname) throw new IdentityError(name, `the guest did not confirm (it said: ${r.stdout.trim().slice(-200)})`);
  return { rng: m[2] as RngReseed };
}

/** Give the identity through the guest agent at `socket` (connects, runs the script, checks it). */
export async function identityOverAgent(name: string, socket: string, id: CloneIdentity, timeoutMs = 30_000): Promise<IdentityResult> {
  let agent: GuestAgent;
  try {
    agent = await GuestAgent.connect(socket, Math.min(timeoutMs, 15_000));
  } catch (e) {
    throw new IdentityError(name, (e as Error).message);
  }
  try {
    const r = await agent.exec('/bin/sh', ['-c', IDENTITY_SCRIPT, 'kumo-identity', ...scriptArgs(id, await clockArg(agent))], { timeoutMs }).catch((e: Error) => {
      throw e instanceof IdentityError ? e : new IdentityError(name, e.message);
    });
    return checkOutput(name, id, r);
  } finally {
    agent.close();
  }
}

/** The same steps over ssh (for images without the guest agent), as root through sudo. */
export async function identityOverSsh(name: string, target: SshTarget, id: CloneIdentity, timeoutMs = 60_000): Promise<IdentityResult> {
  const cmd = shellQuote(['sudo', '-n', 'sh', '-c', IDENTITY_SCRIPT, 'kumo-identity', ...scriptArgs(id, await clockArg())]);
  const r = await sshExec(target, cmd, { timeoutMs }).catch((e: Error) => {
    throw new IdentityError(name, e.message);
  });
  return checkOutput(name, id, r);
}

export class RefreshError extends KumoError {
  constructor(name: string, why: string) {
    super('GUEST_REFRESH_FAILED', 'external', `could not step the clock and reseed the RNG of '${name}' after restoring its snapshot: ${why}`, {
      hint: "the guest runs on with the snapshot's clock and random stream; build images with the qemu-guest-agent element, or check 'kumo exec NAME -- sudo -n true'",
    });
  }
}

/**
 * After a snapshot's restore: RESTORED_SCRIPT through the guest agent at `agentSocket` when one
 * answers within a few seconds, else over ssh (sudo). Throws RefreshError when neither works.
 */
export async function refreshRestoredGuest(name: string, via: { agentSocket?: string; ssh?: SshTarget }, timeoutMs = 30_000): Promise<IdentityResult & { via: 'agent' | 'ssh' }> {
  const rnd = randomBytes(64).toString('base64');
  const check = (r: { code: number; stdout: string; stderr: string }): IdentityResult => {
    const m = /restored-ok rng=(vmgenid|ioctl)/.exec(r.stdout);
    if (r.code !== 0 || !m) throw new RefreshError(name, `the script exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-300)}`);
    return { rng: m[1] as RngReseed };
  };
  let agentWhy = 'no guest agent socket';
  if (via.agentSocket) {
    try {
      const agent = await GuestAgent.connect(via.agentSocket, 3000);
      try {
        return { ...check(await agent.exec('/bin/sh', ['-c', RESTORED_SCRIPT, 'kumo-restored', await clockArg(agent), rnd], { timeoutMs })), via: 'agent' };
      } finally {
        agent.close();
      }
    } catch (e) {
      if (e instanceof RefreshError) throw e;
      agentWhy = (e as Error).message;
    }
  }
  if (!via.ssh) throw new RefreshError(name, agentWhy);
  const r = await sshExec(via.ssh, shellQuote(['sudo', '-n', 'sh', '-c', RESTORED_SCRIPT, 'kumo-restored', await clockArg(), rnd]), { timeoutMs }).catch((e: Error) => {
    throw new RefreshError(name, `${agentWhy}; over ssh: ${e.message}`);
  });
  return { ...check(r), via: 'ssh' };
}
