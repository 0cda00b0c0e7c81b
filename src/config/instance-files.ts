/**
 * The one table of an instance folder's file names (as Lima's `filenames`): every module that
 * reads or writes a file of KUMO_HOME/instances/NAME takes its name from here, whichever layer
 * it is in (the instance layer, a driver, golden images). Pure: no I/O, no name validation (the
 * instance layer's `instanceFiles(paths, name)` validates the name and calls this).
 */
import { join } from 'node:path';

export interface InstanceFiles {
  /** The instance directory itself. */
  dir: string;
  /** instance.json: the instance's record (spec, identity, driver, ports). */
  record: string;
  /** The writable disk: a qcow2 overlay on the read-only base image. */
  disk: string;
  /** The cloud-init seed (NoCloud or ConfigDrive ISO). */
  seed: string;
  /** known_hosts pinning the instance's own ssh host key. */
  knownHosts: string;
  /** The ssh host private key kumo generated for the instance (its public half: hostKey + '.pub'). */
  hostKey: string;
  /** The per-instance lock (src/core/lock.ts). */
  lock: string;
  /** The serial console log (every driver writes the console here). */
  serialLog: string;
  /** QEMU driver: the pid file of the instance's QEMU. */
  qemuPid: string;
  /** QEMU driver: the QMP socket. */
  qmpSocket: string;
  /** QEMU driver: the instance's own copy of the UEFI variable store. */
  efiVars: string;
  /** QEMU driver: the guest agent's virtio-serial port, as a unix socket on the host. */
  agentSocket: string;
  /** QEMU driver: the saved machine state of a suspended instance (`kumo suspend`). */
  suspendState: string;
  /** libvirt driver: the domain XML kumo last defined (present once a start succeeded). */
  domainXml: string;
  /** VirtualBox driver: the folder VirtualBox keeps the VM's files in (createvm --basefolder). */
  vboxDir: string;
  /** VirtualBox driver: which VM kumo made for the instance (name, UUID, base medium); present once it was made. */
  vboxRecord: string;
}

export function instanceFilesIn(dir: string): InstanceFiles {
  return {
    dir,
    record: join(dir, 'instance.json'),
    disk: join(dir, 'disk.qcow2'),
    seed: join(dir, 'seed.iso'),
    knownHosts: join(dir, 'known_hosts'),
    hostKey: join(dir, 'ssh_host_ed25519_key'),
    lock: join(dir, 'lock'),
    serialLog: join(dir, 'serial.log'),
    qemuPid: join(dir, 'qemu.pid'),
    qmpSocket: join(dir, 'qmp.sock'),
    efiVars: join(dir, 'efivars.fd'),
    agentSocket: join(dir, 'qga.sock'),
    suspendState: join(dir, 'suspend.state'),
    domainXml: join(dir, 'domain.xml'),
    vboxDir: join(dir, 'vbox'),
    vboxRecord: join(dir, 'vbox.json'),
  };
}

/** QEMU driver: the files of the virtiofsd serving one shared folder (by its tag, config/mounts.ts). */
export interface VirtiofsdFiles {
  /** The vhost-user socket QEMU connects to. */
  socket: string;
  /** kumo's record of the virtiofsd process (pid, boot id, start time). */
  pid: string;
  /** virtiofsd's own output. */
  log: string;
}

/** The names of a virtiofsd's files are `virtiofsd-TAG.*`; this finds the tag in a pid file's name. */
export const VIRTIOFSD_PID_RE = /^virtiofsd-(kumo\d{1,2})\.pid$/;

export function virtiofsdFilesIn(dir: string, tag: string): VirtiofsdFiles {
  return { socket: join(dir, `virtiofsd-${tag}.sock`), pid: join(dir, `virtiofsd-${tag}.pid`), log: join(dir, `virtiofsd-${tag}.log`) };
}
