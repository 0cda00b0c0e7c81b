/**
 * Pure pieces of the peers bench (bench/peers.bench.ts): the command lines and files each peer is
 * given, and the parsing of /proc figures. Unit-tested in test/unit/bench/peers.test.ts; nothing
 * here runs a process.
 */

/** The machine every tool is given: 2 vCPUs, 1 GiB, QEMU user networking with ssh forwarded to 127.0.0.1:PORT. */
export const SHAPE = { cpus: 2, memoryMiB: 1024 } as const;

/**
 * The PCI address of the user-mode NIC that testcloud's way and Vagrant add on QEMU's command line.
 * libvirt numbers the devices it defines itself (q35: pcie-root-ports from slot 0x01 of pcie.0 up,
 * one per device); a NIC added by `--qemu-commandline` without an address takes QEMU's next free
 * slot at start, which is one libvirt has already handed out, so QEMU refuses to start (the
 * collision the issue notes). Slot 0x10 of the root bus is far above what libvirt hands out for a
 * guest of a handful of devices and below the chipset's fixed ones (0x1f).
 */
export const USER_NIC_PCI = { bus: 'pcie.0', addr: '0x10' } as const;

/** QEMU's -netdev/-device pair for the user-mode NIC with the ssh forward. */
export function userNicArgs(id: string, port: number): string[] {
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(id)) throw new Error(`a QEMU id is letters, digits, - and _, starting with a letter: ${JSON.stringify(id)}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`an ssh forward needs a port 1-65535, got ${port}`);
  return ['-netdev', `user,id=${id},hostfwd=tcp:127.0.0.1:${port}-:22`, '-device', `virtio-net-pci,netdev=${id},bus=${USER_NIC_PCI.bus},addr=${USER_NIC_PCI.addr}`];
}

export interface VirtInstallPlan {
  uri: string;
  name: string;
  disk: string;
  seed: string;
  port: number;
}

/**
 * testcloud's way: `virt-install --import` of a `qemu-img create -b` overlay with a `cloud-localds`
 * seed, attached as a read-only virtio disk (the test image's kernel has no SATA CD-ROM driver loaded at
 * boot, so a `device=cdrom` seed on q35's SATA is never seen). No libvirt network (`--network none`): the NIC is QEMU's user-mode one from
 * `--qemu-commandline`, at its own PCI address (USER_NIC_PCI). TCG (`--virt-type qemu`), q35, CPU
 * mode `maximum` (QEMU's `max`, as kumo uses under TCG). Debian 12's osinfo-db does not know debian12:
 * `--osinfo debian11`.
 */
export function virtInstallArgv(p: VirtInstallPlan): string[] {
  return [
    'virt-install', '--connect', p.uri, '--name', p.name, '--import', '--noautoconsole',
    '--virt-type', 'qemu', '--machine', 'q35', '--cpu', 'mode=maximum',
    '--vcpus', String(SHAPE.cpus), '--memory', String(SHAPE.memoryMiB), '--osinfo', 'debian11',
    '--disk', `path=${p.disk},format=qcow2,bus=virtio`,
    '--disk', `path=${p.seed},format=raw,bus=virtio,readonly=on`,
    '--network', 'none', '--graphics', 'none',
    // one word with '=': argparse takes a separate value that starts with '-' for an option
    `--qemu-commandline=${userNicArgs('peersnet0', p.port).join(' ')}`,
  ];
}

/** The NoCloud seed testcloud writes: the login key, and an instance-id of the instance's name. */
export function testcloudSeed(name: string, publicKey: string): { userData: string; metaData: string } {
  const key = publicKey.trim();
  if (!/^(ssh-|ecdsa-)\S+ \S+/.test(key) || key.includes('\n')) throw new Error('the seed needs one OpenSSH public key line');
  return {
    userData: `#cloud-config\nssh_authorized_keys:\n  - ${JSON.stringify(key)}\n`,
    metaData: `instance-id: ${name}\nlocal-hostname: ${name}\n`,
  };
}

export interface VagrantPlan {
  box: string;
  uri: string;
  pool: string;
  poolPath: string;
  port: number;
}

const rb = (s: string) => JSON.stringify(s); // a Ruby double-quoted string (JSON escapes are Ruby's too for these)

/**
 * The project Vagrantfile: the box, the shape, vagrant-libvirt against the given libvirt URI with
 * TCG, no management network (it would be a libvirt NAT network) and the user-mode NIC on QEMU's
 * command line, at its own PCI address. vagrant-libvirt 0.11 finds a guest only by its management
 * network's DHCP leases or by what the guest agent reports for the MAC of the domain's first
 * libvirt <interface>, and a NIC of QEMU's own has neither: the Vagrantfile tells its driver the
 * address (127.0.0.1, where the forward is) and Vagrant's own loop waits for ssh there.
 * No synced folder (vagrant-libvirt's default is NFS).
 */
export function vagrantfile(p: VagrantPlan): string {
  const nic = userNicArgs('peersnet0', p.port);
  return [
    '# Written by kumo\'s peers bench (bench/peers.bench.ts).',
    'require "vagrant-libvirt/driver"',
    '# vagrant-libvirt finds a guest by DHCP lease or agent report for a libvirt NIC; this NIC is QEMU\'s',
    '# user-mode one, forwarded to 127.0.0.1 (config.ssh.host/port below).',
    'module KumoPeersUserNet',
    '  def get_ipaddress(domain = nil)',
    '    "127.0.0.1"',
    '  end',
    'end',
    'VagrantPlugins::ProviderLibvirt::Driver.prepend(KumoPeersUserNet)',
    '',
    'Vagrant.configure("2") do |config|',
    `  config.vm.box = ${rb(p.box)}`,
    '  config.vm.box_check_update = false',
    '  config.vm.boot_timeout = 1800 # the default 300 s is too short for a TCG boot on a loaded machine',
    '  config.vm.synced_folder ".", "/vagrant", disabled: true',
    '  config.ssh.host = "127.0.0.1"',
    `  config.ssh.port = ${p.port}`,
    '  config.vm.provider :libvirt do |lv|',
    `    lv.uri = ${rb(p.uri)}`,
    '    lv.driver = "qemu"',
    '    lv.machine_type = "q35"',
    '    lv.cpu_mode = "maximum"',
    `    lv.cpus = ${SHAPE.cpus}`,
    `    lv.memory = ${SHAPE.memoryMiB}`,
    '    lv.mgmt_attach = false',
    '    lv.qemu_use_agent = true',
    '    lv.graphics_type = "none"',
    `    lv.storage_pool_name = ${rb(p.pool)}`,
    `    lv.storage_pool_path = ${rb(p.poolPath)}`,
    ...nic.map((a) => `    lv.qemuargs value: ${rb(a)}`),
    '  end',
    'end',
    '',
  ].join('\n');
}

/** CPU seconds of a process from /proc/PID/stat (utime + stime; with children, cutime + cstime too). */
export function cpuSecondsFromStat(stat: string, ticksPerSecond: number, opts: { children?: boolean } = {}): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('not a /proc/PID/stat line');
  const f = stat.slice(close + 2).trim().split(/\s+/); // f[0] is field 3 (state)
  const n = (field: number) => {
    const v = Number(f[field - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc/PID/stat field ${field} is not a number`);
    return v;
  };
  const ticks = n(14) + n(15) + (opts.children ? n(16) + n(17) : 0);
  return ticks / ticksPerSecond;
}

/** The pid of a QEMU process given `-name guest=NAME` (libvirt's) among /proc/PID/cmdline texts. */
export function findGuestPid(cmdlines: Array<{ pid: number; cmdline: string }>, name: string): number | undefined {
  for (const c of cmdlines) {
    const argv = c.cmdline.split('\0');
    if (!/qemu-system/.test(argv[0] ?? '')) continue;
    const i = argv.indexOf('-name');
    if (i >= 0 && (argv[i + 1] ?? '').split(',').includes(`guest=${name}`)) return c.pid;
  }
  return undefined;
}

/** One figure's ratio against kumo's, as the bench prints it. */
export function ratioText(value: number, kumo: number): string {
  if (!(kumo > 0) || !Number.isFinite(value)) return 'n/a';
  return `${(value / kumo).toFixed(2)}x`;
}
