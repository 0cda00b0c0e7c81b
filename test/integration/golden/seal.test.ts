/**
 * The sealing script on a fake root tree (KUMO_SEAL_ROOT), run by the real /bin/sh: what a
 * machine's identity is made of is gone afterwards, and what the user installed is kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, rm, stat, readdir } from 'node:fs/promises';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { sealScript, sealHookScript, SEAL_DONE_MARKER, SEAL_HOOK_PATH } from '../../../src/golden/seal.js';

async function put(root: string, rel: string, content = 'x\n'): Promise<void> {
  const p = join(root, rel);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
}

function hostIdentity(): string {
  const keys = existsSync('/etc/ssh') ? readdirSync('/etc/ssh').filter((f) => f.startsWith('ssh_host_')).sort() : [];
  return JSON.stringify({ machineId: existsSync('/etc/machine-id') ? readFileSync('/etc/machine-id', 'utf8') : null, keys, rootSsh: existsSync('/root/.ssh') });
}

const noThrowawayRoot =
  process.getuid?.() !== 0 ? 'needs root (mount namespace, overlay, chroot)' : !readFileSync('/proc/filesystems', 'utf8').includes('overlay') ? 'the kernel has no overlayfs' : undefined;

test('seal script: identity removed, user data kept, on a fake tree', { skip: noThrowawayRoot }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'kumo-seal-'));
  try {
    const identity = [
      'etc/ssh/ssh_host_ed25519_key',
      'etc/ssh/ssh_host_ed25519_key.pub',
      'etc/ssh/ssh_host_rsa_key',
      'var/lib/dbus/machine-id',
      'var/lib/cloud/instance/boot-finished',
      'var/lib/cloud/data/instance-id',
      'var/lib/cloud/seed/nocloud/meta-data',
      'var/log/cloud-init.log',
      'var/log/cloud-init-output.log',
      'var/log/syslog.1',
      'var/log/syslog.2.gz',
      'var/log/journal/0123456789abcdef/system.journal',
      'root/.bash_history',
      'root/.ssh/authorized_keys',
      'home/kumo/.bash_history',
      'home/kumo/.lesshst',
      'home/kumo/.ssh/authorized_keys',
      'var/lib/dhcp/dhclient.eth0.leases',
      'var/lib/NetworkManager/internal-1234-eth0.lease',
      'etc/udev/rules.d/70-persistent-net.rules',
      'var/lib/systemd/random-seed',
      'tmp/build-junk/file',
      'tmp/.hidden',
      'var/tmp/systemd-private-xyz/tmp/a',
      'var/cache/apt/archives/hello_1.0_amd64.deb',
      'var/cache/apt/pkgcache.bin',
      'etc/shadow-',
      'var/mail/kumo',
    ];
    for (const f of identity) await put(root, f);
    await put(root, 'etc/machine-id', '0123456789abcdef0123456789abcdef\n');
    await put(root, 'etc/hostname', 'my-golden-source\n');
    await put(root, 'etc/hosts', '127.0.0.1 localhost\n127.0.1.1 my-golden-source\n::1 localhost\n');
    await put(root, 'etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
    await put(root, 'var/log/syslog', 'lots of lines that name my-golden-source\n');
    await put(root, 'var/log/apt/history.log', 'Install: hello\n');
    // What the user made: must survive.
    const kept = ['etc/golden-marker', 'opt/app/bin/app', 'home/kumo/notes.txt', 'usr/share/doc/hello/copyright', 'var/lib/dpkg/status', 'etc/ssh/sshd_config', 'var/lib/cloud-not-cloud/keep'];
    for (const f of kept) await put(root, f, 'keep me\n');

    // never on the host: in a throw-away root, with the fake tree bind-mounted at /seal-tree
    const before = hostIdentity();
    const r = inThrowawayRoot({ script: sealScript(), env: ['KUMO_SEAL_ROOT=/seal-tree'], tree: root });
    assert.equal(r.status, 0, r.out);
    assert.equal(r.facts.rc, '0', r.out);
    assert.match(r.stdout, new RegExp(SEAL_DONE_MARKER));
    assert.equal(hostIdentity(), before);

    for (const f of identity) assert.equal(existsSync(join(root, f)), false, `${f} should be gone`);
    assert.equal(existsSync(join(root, 'root/.ssh')), false);
    assert.equal(existsSync(join(root, 'home/kumo/.ssh')), false);
    assert.deepEqual(await readdir(join(root, 'var/lib/cloud')), []);
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    assert.deepEqual(await readdir(join(root, 'var/log/journal')), []);
    // machine-id: present and empty (systemd's "first boot" state)
    assert.equal((await stat(join(root, 'etc/machine-id'))).size, 0);
    // logs emptied, not removed
    assert.equal((await stat(join(root, 'var/log/syslog'))).size, 0);
    assert.equal((await stat(join(root, 'var/log/apt/history.log'))).size, 0);
    // a neutral host name from os-release
    assert.equal(await readFile(join(root, 'etc/hostname'), 'utf8'), 'debian\n');
    assert.match(await readFile(join(root, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1 debian$/m);
    assert.doesNotMatch(await readFile(join(root, 'etc/hosts'), 'utf8'), /my-golden-source/);
    for (const f of kept) assert.equal(await readFile(join(root, f), 'utf8'), 'keep me\n', `${f} should be kept`);
    // no hook is installed into a fake tree
    assert.equal(existsSync(join(root, 'usr/lib/systemd/system-shutdown')), false);

    // idempotent: a second run (as the shutdown hook does) succeeds on the sealed tree
    const again = inThrowawayRoot({ script: sealScript(), env: ['KUMO_SEAL_ROOT=/seal-tree'], tree: root });
    assert.equal(again.facts.rc, '0', again.out);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('seal script and hook are valid POSIX sh (sh -n), and the live script embeds the hook', () => {
  for (const [what, text] of [
    ['script', sealScript()],
    ['hook', sealHookScript()],
  ] as const) {
    const r = spawnSync('/bin/sh', ['-n'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${what}: ${r.stderr}`);
  }
  assert.ok(sealScript().includes(sealHookScript()));
});

/**
 * Runs a sealing script as root inside a throw-away root: a private mount namespace holding an
 * overlay of / whose writable layer is a tmpfs of that namespace, entered with chroot (with /proc
 * and /dev as a guest has them). Whatever the script does to "/" (remove host keys, empty
 * machine-id, remount / read-only) lands in that tmpfs and vanishes with the namespace: the host
 * is never written. `tree`, when given, is bind-mounted at /seal-tree in the throw-away root (the
 * fake tree a KUMO_SEAL_ROOT run works on). `setup` and `inspect` are shell lines run outside the
 * chroot before and after, with $M the throw-away root; `inspect` prints KEY=VALUE facts.
 */
function inThrowawayRoot(o: { script: string; args?: string[]; env?: string[]; tree?: string; setup?: string[]; inspect?: string[] }): { status: number | null; out: string; stdout: string; facts: Record<string, string> } {
  const base = mkdtempSync(join(tmpdir(), 'kumo-seal-ns-'));
  try {
    writeFileSync(join(base, 'script'), o.script, { mode: 0o755 });
    const sh = [
      'set -eu',
      'B="$1"; shift',
      'mkdir -p "$B/t"; mount -t tmpfs tmpfs "$B/t"',
      'mkdir -p "$B/t/upper" "$B/t/work" "$B/t/m"',
      'mount -t overlay overlay -o "lowerdir=/,upperdir=$B/t/upper,workdir=$B/t/work" "$B/t/m"',
      'M="$B/t/m"',
      'mount -t proc proc "$M/proc"',
      'mount --bind /dev "$M/dev"',
      ...(o.tree ? ['mkdir -p "$M/seal-tree"', `mount --bind ${shellQuote(o.tree)} "$M/seal-tree"`] : []),
      'cp "$B/script" "$M/kumo-seal-test-script"',
      ...(o.setup ?? []),
      `set +e; chroot "$M" /usr/bin/env ${(o.env ?? []).map(shellQuote).join(' ')} /bin/sh /kumo-seal-test-script "$@" 2>"$B/t/stderr"; rc=$?; set -e`,
      'cat "$B/t/stderr" >&2',
      'echo "rc=$rc"',
      ...(o.inspect ?? []),
    ].join('\n');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', sh, 'bash', base, ...(o.args ?? [])], { encoding: 'utf8' });
    const facts: Record<string, string> = {};
    for (const l of r.stdout.split('\n')) {
      const m = l.match(/^([a-z-]+)=(.*)$/);
      if (m) facts[m[1]!] = m[2]!;
    }
    return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout, facts };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/** The real shutdown hook, installed where capture installs it, run with `arg` in a throw-away root. */
function hookInThrowawayRoot(arg: string) {
  return inThrowawayRoot({
    // run the hook from its own path, as systemd-shutdown does
    script: `#!/bin/sh\nexec /bin/sh ${SEAL_HOOK_PATH} "$@"\n`,
    args: [arg],
    setup: [
      // what a machine's identity is made of, planted in the throw-away tree, and the hook
      `mkdir -p "$M/etc/ssh" "$M/root/.ssh" "$M${dirname(SEAL_HOOK_PATH)}"`,
      'echo 0123456789abcdef0123456789abcdef > "$M/etc/machine-id"',
      // the host's own host keys (an installed openssh-server) show through the overlay: hide them
      // there (whiteouts in the throw-away upper layer; the host's files are untouched), plant two
      'rm -f "$M"/etc/ssh/ssh_host_*',
      'echo key > "$M/etc/ssh/ssh_host_kumotest_key"; echo pub > "$M/etc/ssh/ssh_host_kumotest_key.pub"',
      'echo k > "$M/root/.ssh/authorized_keys"',
      `printf '%s' ${shellQuote(sealHookScript())} > "$M${SEAL_HOOK_PATH}"; chmod 0755 "$M${SEAL_HOOK_PATH}"`,
    ],
    inspect: [
      'echo "machine-id-bytes=$(stat -c %s "$M/etc/machine-id")"',
      'echo "host-keys=$(ls "$M/etc/ssh" | grep -c "^ssh_host_" || true)"',
      'echo "root-ssh=$(test -e "$M/root/.ssh" && echo present || echo gone)"',
      `echo "hook=$(test -e "$M${SEAL_HOOK_PATH}" && echo present || echo gone)"`,
      // the overlay's mount options, seen from outside the chroot: ro once the hook remounted its /
      'echo "root-ro=$(awk -v m="$M" \'$5 == m { print ($6 ~ /^ro/) ? "yes" : "no" }\' /proc/self/mountinfo)"',
    ],
  });
}


test('the shutdown hook, run for real in a throw-away root: a reboot changes nothing, a power-off seals and removes the hook', { skip: noThrowawayRoot }, () => {
  const before = hostIdentity();
  const reboot = hookInThrowawayRoot('reboot');
  assert.equal(reboot.status, 0, reboot.out);
  assert.equal(reboot.facts.rc, '0', reboot.out);
  assert.equal(reboot.facts['machine-id-bytes'], '33', `a reboot must not seal:\n${reboot.out}`);
  assert.equal(reboot.facts['host-keys'], '2', reboot.out);
  assert.equal(reboot.facts['root-ssh'], 'present', reboot.out);
  assert.equal(reboot.facts.hook, 'present', 'the hook stays for the power-off');

  const off = hookInThrowawayRoot('poweroff');
  assert.equal(off.status, 0, off.out);
  assert.equal(off.facts.rc, '0', off.out);
  assert.equal(off.facts['machine-id-bytes'], '0', `machine-id must be emptied:\n${off.out}`);
  assert.equal(off.facts['host-keys'], '0', `no ssh_host_* may be left:\n${off.out}`);
  assert.equal(off.facts['root-ssh'], 'gone', off.out);
  assert.equal(off.facts.hook, 'gone', 'the one-shot hook removes itself');
  assert.equal(off.facts['root-ro'], 'yes', `the hook remounts / read-only at the end:\n${off.out}`);
  // and the host itself was never touched
  assert.equal(hostIdentity(), before);
});
