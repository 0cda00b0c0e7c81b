/**
 * Sealing: remove what makes one machine unique, as virt-sysprep does for Linux guests, so that
 * every instance launched from a captured image gets its own identity.
 *
 * How it runs (see docs/golden-images.md, "How sealing works"): never in the source instance.
 * `capture` boots a throw-away COPY of the stopped source (a temporary qcow2 overlay on top of
 * the source's disk, which QEMU opens read-only as a backing file), with the source's seed and
 * keys so the first ssh connection is already verified. Over ssh, as root, the copy runs
 * `sealScript()`:
 *
 *   1. the guest's own tools: `cloud-init clean --logs --seed`, `apt-get clean` (or dnf/yum),
 *      `journalctl --relinquish-var` (journald writes to /run from now on);
 *   2. `sealFiles` on the live tree (machine-id, host keys, logs, histories, leases, ...);
 *   3. installs a one-shot systemd shutdown hook that runs `sealFiles` again at the very end of
 *      the power-off, after every process is gone (root is remounted read-write for it, then
 *      read-only again), so nothing written during the shutdown itself survives;
 *
 * then kumo powers the copy off cleanly (`systemctl poweroff`) and waits for QEMU to exit. The
 * capture then converts the stopped chain into a standalone compressed qcow2. The source's disk
 * is only ever read, so the source keeps booting with its identity.
 *
 * The script takes its root from KUMO_SEAL_ROOT ('' = the running system), so the file part is
 * tested on a fake tree without a VM (test/integration/golden/seal.test.ts).
 */

/** What sealing removes or resets, for docs, help and `capture --json`. */
export const SEAL_OPERATIONS: readonly { id: string; what: string }[] = [
  { id: 'machine-id', what: '/etc/machine-id emptied (systemd makes a new one at the next boot); /var/lib/dbus/machine-id removed' },
  { id: 'ssh-hostkeys', what: '/etc/ssh/ssh_host_* removed (new instances get theirs from the seed, or cloud-init makes them)' },
  { id: 'cloud-init', what: 'cloud-init clean --logs --seed: /var/lib/cloud/* and the cloud-init logs' },
  { id: 'logfiles', what: 'rotated logs removed, other files under /var/log emptied, the persistent journal removed' },
  { id: 'histories', what: 'shell, less, vim and python histories of root and of every /home user' },
  { id: 'ssh-userdir', what: '~/.ssh of root and of every /home user (authorized keys come from the seed)' },
  { id: 'dhcp-leases', what: 'DHCP client leases (dhclient, dhcpcd, NetworkManager, systemd-networkd)' },
  { id: 'udev-persistent-net', what: '/etc/udev/rules.d/70-persistent-net.rules' },
  { id: 'random-seed', what: '/var/lib/systemd/random-seed' },
  { id: 'tmp-files', what: 'everything under /tmp and /var/tmp' },
  { id: 'package-cache', what: 'apt (or dnf/yum) package caches' },
  { id: 'passwd-backups', what: '/etc/passwd- /etc/shadow- /etc/group- /etc/gshadow-' },
  { id: 'mail-spool', what: '/var/mail/* and /var/spool/mail/*' },
  { id: 'hostname', what: '/etc/hostname and the 127.0.1.1 line of /etc/hosts set to a neutral name (the os-release ID)' },
];

/** The printed line that tells kumo the live part finished. */
export const SEAL_DONE_MARKER = 'kumo-seal: done';

/** Where the one-shot shutdown hook is installed in the guest. */
export const SEAL_HOOK_PATH = '/usr/lib/systemd/system-shutdown/kumo-seal.shutdown';

/**
 * The file part of sealing, as a POSIX shell function `seal_files ROOT` (ROOT '' = this system).
 * Every step is idempotent and tolerates missing files, so it can run twice (live, then at the
 * end of the power-off).
 */
export function sealFilesFunction(): string {
  return String.raw`seal_files() {
  r="$1"
  # machine-id: an empty file means "not yet initialised": systemd makes a new one at boot
  if [ -e "$r/etc/machine-id" ] || [ -L "$r/etc/machine-id" ]; then rm -f "$r/etc/machine-id"; : > "$r/etc/machine-id"; chmod 0444 "$r/etc/machine-id"; fi
  rm -f "$r/var/lib/dbus/machine-id"
  # ssh host keys
  rm -f "$r"/etc/ssh/ssh_host_*
  # cloud-init state, its seed copies and its logs
  if [ -d "$r/var/lib/cloud" ]; then find "$r/var/lib/cloud" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
  rm -f "$r"/var/log/cloud-init*.log
  # logs: rotated files removed, the others emptied (services expect them), the journal removed
  if [ -d "$r/var/log" ]; then
    find "$r/var/log" -type f \( -name '*.gz' -o -name '*.xz' -o -name '*.bz2' -o -name '*.zst' -o -name '*.[0-9]' -o -name '*.old' -o -name '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' \) -exec rm -f {} +
    if [ -d "$r/var/log/journal" ]; then find "$r/var/log/journal" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
    find "$r/var/log" -type f -exec truncate -s 0 {} +
  fi
  # shell and tool histories, ssh user folders
  for h in "$r/root" "$r"/home/*; do
    [ -d "$h" ] || continue
    rm -f "$h/.bash_history" "$h/.zsh_history" "$h/.sh_history" "$h/.ash_history" "$h/.history" "$h/.lesshst" "$h/.viminfo" "$h/.python_history" "$h/.mysql_history" "$h/.psql_history" "$h/.wget-hsts" "$h/.sudo_as_admin_successful"
    rm -rf "$h/.ssh"
  done
  # DHCP leases
  rm -rf "$r"/var/lib/dhcp/*.leases "$r"/var/lib/dhcp/*.lease "$r"/var/lib/dhcp/dhclient* "$r"/var/lib/dhclient/* "$r"/var/lib/dhcpcd/* "$r"/var/lib/dhcpcd5/*
  rm -f "$r"/var/lib/NetworkManager/*.lease "$r"/var/lib/NetworkManager/*-lease* "$r"/var/lib/NetworkManager/secret_key "$r"/var/lib/NetworkManager/timestamps
  rm -rf "$r"/var/lib/systemd/network/* "$r"/var/lib/wicked/*
  # persistent network interface names bound to a MAC
  rm -f "$r/etc/udev/rules.d/70-persistent-net.rules" "$r/etc/udev/rules.d/70-persistent-cd.rules"
  # random seeds
  rm -f "$r/var/lib/systemd/random-seed" "$r/var/lib/urandom/random-seed" "$r/var/lib/random-seed"
  # temporary files
  for d in "$r/tmp" "$r/var/tmp"; do [ -d "$d" ] && find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; done
  # package caches
  rm -f "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/archives/partial/* "$r"/var/cache/apt/*.bin
  if [ -d "$r/var/cache/dnf" ]; then find "$r/var/cache/dnf" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
  if [ -d "$r/var/cache/yum" ]; then find "$r/var/cache/yum" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; fi
  # account database backups, mail
  rm -f "$r/etc/passwd-" "$r/etc/shadow-" "$r/etc/group-" "$r/etc/gshadow-"
  rm -rf "$r"/var/mail/* "$r"/var/spool/mail/*
  # a neutral host name: cloud-init sets each instance's own from its seed
  neutral=localhost
  if [ -r "$r/etc/os-release" ]; then neutral=$(sed -n 's/^ID="\{0,1\}\([a-z0-9._-]*\)"\{0,1\}$/\1/p' "$r/etc/os-release" | head -n 1); [ -n "$neutral" ] || neutral=localhost; fi
  if [ -e "$r/etc/hostname" ]; then echo "$neutral" > "$r/etc/hostname"; fi
  if [ -f "$r/etc/hosts" ]; then sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1 $neutral/" "$r/etc/hosts"; fi
  return 0
}`;
}

/** The one-shot shutdown hook (runs as `HOOK poweroff` at the very end of the power-off). */
export function sealHookScript(): string {
  return [
    '#!/bin/sh',
    '# Installed by kumo capture: seals the file system once more after every process is gone,',
    '# then removes itself. Runs only for a power-off.',
    '[ "$1" = poweroff ] || exit 0',
    '# Run from memory, not from this file: once the file is removed, a shell still reading it would',
    '# keep an unlinked open file on / and the final remount read-only would fail (EBUSY).',
    '[ -n "${KUMO_SEAL_FROM_MEMORY:-}" ] || KUMO_SEAL_FROM_MEMORY=1 exec /bin/sh -c "$(cat "$0")" "$0" "$@"',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    sealFilesFunction(),
    'mount -o remount,rw / 2>/dev/null || exit 0',
    'seal_files ""',
    `rm -f ${SEAL_HOOK_PATH}`,
    'sync',
    'mount -o remount,ro / 2>/dev/null',
    'exit 0',
    '',
  ].join('\n');
}

/**
 * The live sealing script, run as root (`sudo -n sh -s`, script on stdin). With KUMO_SEAL_ROOT
 * set it seals that tree instead of the running system and skips the guest tools and the hook.
 * Prints SEAL_DONE_MARKER when it finished; with the argument `poweroff` (`sh -s poweroff`) it
 * then starts a clean power-off (it must: ~/.ssh is gone, so kumo cannot log in again).
 */
export function sealScript(): string {
  const hook = sealHookScript();
  return [
    '#!/bin/sh',
    '# kumo seal: remove what makes this machine unique (like virt-sysprep). See src/golden/seal.ts.',
    'set -u',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    'R="${KUMO_SEAL_ROOT:-}"',
    sealFilesFunction(),
    'if [ -z "$R" ]; then',
    '  if [ "$(id -u)" != 0 ]; then echo "kumo-seal: must run as root" >&2; exit 1; fi',
    '  # the guest\'s own tools first',
    '  if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs --seed >/dev/null 2>&1 || echo "kumo-seal: cloud-init clean failed; removing its state by hand" >&2; fi',
    '  if command -v apt-get >/dev/null 2>&1; then apt-get clean >/dev/null 2>&1 || true; fi',
    '  if command -v dnf >/dev/null 2>&1; then dnf clean all >/dev/null 2>&1 || true; elif command -v yum >/dev/null 2>&1; then yum clean all >/dev/null 2>&1 || true; fi',
    '  # journald: write to /run from now on, so the persistent journal can go',
    '  if command -v journalctl >/dev/null 2>&1; then journalctl --relinquish-var >/dev/null 2>&1 || true; fi',
    'fi',
    'seal_files "$R"',
    'if [ -z "$R" ]; then',
    '  mkdir -p /usr/lib/systemd/system-shutdown',
    `  cat > ${SEAL_HOOK_PATH} <<'KUMO_SEAL_HOOK'`,
    hook + 'KUMO_SEAL_HOOK',
    `  chmod 0755 ${SEAL_HOOK_PATH}`,
    'fi',
    'sync',
    `echo '${SEAL_DONE_MARKER}'`,
    '# "sh -s poweroff": power off cleanly now (the ssh keys are gone, kumo cannot log in again)',
    'if [ -z "$R" ] && [ "${1:-}" = poweroff ]; then systemctl --no-block poweroff >/dev/null 2>&1 || poweroff; fi',
    'exit 0',
    '',
  ].join('\n');
}
