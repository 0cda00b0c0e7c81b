/**
 * The QEMU command line, built as a pure function of the instance runtime (no I/O), so it is
 * unit-tested on its own. Layout:
 *
 *   q35 machine, the chosen accelerator (KVM, or TCG with one thread per vCPU), virtio-blk for
 *   the overlay disk and for the read-only seed, virtio-net on user-mode networking with ssh (and
 *   the user's ports) forwarded from 127.0.0.1, virtio-rng (sshd needs entropy early), the serial
 *   console to serial.log, QMP on a unix socket, the guest agent's virtio-serial port on another,
 *   the VM generation id, a pid file, and -daemonize so QEMU outlives kumo. A restore (a warm
 *   template's clone, a suspended instance) adds `-incoming defer`, a pinned machine type, and
 *   for templates guest RAM in a file (memory-backend-file).
 *
 * The instance directory path appears in the argv (pid file, QMP socket), which is how kumo
 * recognises its own QEMU in /proc/PID/cmdline.
 *
 * Shared folders (rt.mounts): a virtiofs mount is a vhost-user-fs device on the socket of its
 * virtiofsd (driver/qemu/virtiofs.ts), which needs guest RAM the daemon can map: a memfd backend
 * with share=on (or the memory file when there is one, shared); a 9p mount is QEMU's own
 * `-fsdev local` (security_model=none: files are made as the user running QEMU; readonly=on
 * for :ro, so QEMU itself refuses writes) on a virtio-9p device. Each device's tag is the mount's.
 */
import { instanceFilesIn, virtiofsdFilesIn } from '../../config/instance-files.js';
import type { InstanceRuntime } from '../driver.js';
import { hostfwdRule } from '../shared/hostfwd.js';

/** The id of the user-mode netdev (the monitor's hostfwd_add/hostfwd_remove name it). */
export const QEMU_NETDEV = 'net0';

export interface QemuFiles {
  pidFile: string;
  qmpSocket: string;
  serialLog: string;
  agentSocket: string;
}

/** The QEMU driver's files of an instance folder (names from the one table, config/instance-files). */
export function qemuFiles(dir: string): QemuFiles {
  const f = instanceFilesIn(dir);
  return { pidFile: f.qemuPid, qmpSocket: f.qmpSocket, serialLog: f.serialLog, agentSocket: f.agentSocket };
}

export interface QemuArgvOptions {
  accel: 'kvm' | 'tcg';
  /** Run in the foreground instead of -daemonize (tests, debugging). */
  foreground?: boolean;
  /** UEFI firmware: OVMF's code (read-only) and this instance's own copy of the variable store. */
  ovmf?: { code: string; vars: string };
}

/** Escape a value for QEMU's option syntax: commas are doubled. */
export function qemuOptValue(v: string): string {
  return v.replace(/,/g, ',,');
}

/** The devices of the shared folders. */
function mountArgs(rt: InstanceRuntime): string[] {
  const a: string[] = [];
  (rt.mounts ?? []).forEach((m, i) => {
    if (m.type === 'virtiofs') {
      a.push('-chardev', `socket,id=vfs${i},path=${qemuOptValue(virtiofsdFilesIn(rt.dir, m.tag).socket)}`);
      a.push('-device', `vhost-user-fs-pci,chardev=vfs${i},tag=${m.tag},queue-size=1024`);
    } else {
      a.push('-fsdev', `local,id=fs${i},path=${qemuOptValue(m.host)},security_model=none,multidevs=remap${m.readOnly ? ',readonly=on' : ''}`);
      a.push('-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${m.tag}`);
    }
  });
  return a;
}

export function buildQemuArgv(rt: InstanceRuntime, o: QemuArgvOptions): string[] {
  const files = qemuFiles(rt.dir);
  const a: string[] = [];
  a.push('-name', `kumo:${rt.name},process=kumo:${rt.name}`);
  a.push('-nodefaults', '-no-user-config');
  const machine = rt.machine ?? 'q35';
  const virtiofs = (rt.mounts ?? []).filter((m) => m.type === 'virtiofs');
  if (virtiofs.length && rt.memoryFile && !rt.memoryFile.share) throw new Error('argv: virtiofs needs shared guest RAM, and the memory file is mapped private');
  const memBackend = rt.memoryFile || virtiofs.length ? ',memory-backend=mem0' : '';
  a.push('-machine', (o.accel === 'kvm' ? `${machine},accel=kvm` : machine) + memBackend);
  if (o.accel === 'kvm') a.push('-accel', 'kvm', '-cpu', 'host');
  else a.push('-accel', 'tcg,thread=multi', '-cpu', 'max');
  a.push('-smp', String(rt.cpus));
  a.push('-m', `${rt.memoryMiB}M`);
  if (rt.memoryFile) {
    // Guest RAM in a file: shared while a template is made, private (copy-on-write) in a clone.
    a.push('-object', `memory-backend-file,id=mem0,size=${rt.memoryMiB}M,mem-path=${qemuOptValue(rt.memoryFile.path)},share=${rt.memoryFile.share ? 'on' : 'off'}`);
  } else if (virtiofs.length) {
    // virtiofsd maps guest RAM: anonymous memory shared through a memfd
    a.push('-object', `memory-backend-memfd,id=mem0,size=${rt.memoryMiB}M,share=on`);
  }
  if (rt.firmware === 'uefi' && o.ovmf) {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qemuOptValue(o.ovmf.code)}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${qemuOptValue(o.ovmf.vars)}`);
  }
  // The instance disk: the qcow2 overlay, backed by the read-only base.
  a.push('-drive', `file=${qemuOptValue(rt.disk.path)},if=none,id=disk0,format=${rt.disk.format},discard=unmap,cache=writeback`);
  a.push('-device', 'virtio-blk-pci,drive=disk0,bootindex=0');
  if (rt.seed) {
    a.push('-drive', `file=${qemuOptValue(rt.seed.path)},if=none,id=seed0,format=raw,readonly=on`);
    a.push('-device', 'virtio-blk-pci,drive=seed0');
  }
  const fwds = [{ proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: rt.sshPort, guestPort: 22 }, ...rt.ports];
  a.push('-netdev', ['user', `id=${QEMU_NETDEV}`, ...fwds.map((f) => `hostfwd=${hostfwdRule(f)}`)].join(','));
  a.push('-device', `virtio-net-pci,netdev=${QEMU_NETDEV},mac=${rt.mac}`);
  // Private networks: a NIC each on the network's VDE switch (src/network/switch.ts).
  (rt.networks ?? []).forEach((n, i) => {
    a.push('-netdev', `vde,id=vnet${i + 1},sock=${qemuOptValue(n.socket)}`);
    a.push('-device', `virtio-net-pci,netdev=vnet${i + 1},mac=${n.mac}`);
  });
  a.push('-device', 'virtio-rng-pci');
  a.push(...mountArgs(rt));
  // The VM generation id: a clone gets a new one, and the guest kernel reseeds its RNG.
  if (rt.vmgenid) a.push('-device', `vmgenid,guid=${rt.vmgenid}`);
  // The guest agent's port (qemu-guest-agent starts when udev sees it).
  a.push('-chardev', `socket,id=qga0,path=${qemuOptValue(files.agentSocket)},server=on,wait=off`);
  a.push('-device', 'virtio-serial-pci,id=vser0');
  a.push('-device', 'virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0');
  a.push('-chardev', `file,id=serial0,path=${qemuOptValue(files.serialLog)},append=on`);
  a.push('-serial', 'chardev:serial0');
  a.push('-qmp', `unix:${qemuOptValue(files.qmpSocket)},server=on,wait=off`);
  a.push('-display', 'none');
  a.push('-pidfile', files.pidFile);
  if (rt.restore?.snapshot) a.push('-loadvm', rt.restore.snapshot);
  else if (rt.restore) a.push('-incoming', 'defer');
  if (!o.foreground) a.push('-daemonize');
  return a;
}
