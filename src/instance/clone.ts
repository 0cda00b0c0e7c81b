/**
 * `kumo clone SRC NEW`: a new instance whose disk is SRC's current disk, with its own identity.
 *
 * The disk: a copy of SRC's qcow2 overlay (only SRC's changes; it keeps pointing at the same
 * read-only base, so a clone costs what SRC changed, not a whole disk), written to a temp file
 * and renamed, with SRC's internal snapshots removed from the copy (a clone starts its own
 * history). A consolidated SRC (no backing file) gives a standalone copy.
 *
 * The identity, made by the instance layer's createInstance exactly as for a new instance: a new
 * cloud-init instance-id (so cloud-init treats the clone as a new machine: host keys, hostname
 * NEW, users), a new seed, new ssh host keys and known_hosts, a new MAC (from the instance-id) and
 * a new ssh port on first start. SRC's extra port forwards are not copied (their host ports
 * belong to SRC), nor is SRC's user-data (it ran in SRC already; the clone's seed has kumo's part:
 * user, keys, host keys, hostname). The clone's seed also carries CLONE_USER_DATA, a `bootcmd`
 * that cloud-init runs once per instance-id: it replaces SRC's machine-id with a fresh one (on the
 * first boot of the clone; journald is restarted to pick it up). For machines sealed of every
 * other trace of SRC (logs, histories, caches), capture SRC into an image and launch from it.
 *
 * SRC must be stopped (a disk in use is not a consistent copy) and is only read.
 */
import { copyFile, constants, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { validateSpec, type InstanceSpecInput } from '../config/spec.js';
import { fsyncDir, fsyncFile, tempPathFor } from '../core/fs.js';
import { Emitter } from '../events/events.js';
import { qemuImg } from '../disk/index.js';
import { driverNames, getDriver, hasCapability } from '../driver/index.js';
import { DEFAULT_KEY_NAME } from '../guest/keys.js';
import { createInstance } from './create.js';
import { lockStopped, type StopFirstOptions } from './guard.js';
import { mapDiskFull } from './space.js';
import { instanceFiles, readRecord, runtimeFor, type InstanceRecord } from './store.js';

/** The clone's own user-data: a fresh machine-id on its first boot (once per instance-id). */
export const CLONE_USER_DATA = `#cloud-config
# kumo clone: this machine's disk was copied from another one; give it its own machine-id.
bootcmd:
  - [cloud-init-per, instance, kumo-clone-machine-id, sh, -c, "rm -f /etc/machine-id /var/lib/dbus/machine-id && systemd-machine-id-setup && (systemctl restart systemd-journald || true)"]
`;

export interface CloneOptions extends StopFirstOptions {}

export interface CloneResult {
  record: InstanceRecord;
  from: string;
  /** Port forwards of the source that were not copied. */
  droppedPorts: number;
}

/** Copy `src` to `dst` (temp, drop the copy's internal snapshots, fsync, rename, fsync the folder). */
async function copyDisk(src: string, dst: string): Promise<void> {
  const tmp = tempPathFor(dst);
  try {
    await copyFile(src, tmp, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
    for (const s of await qemuImg.snapshotList(tmp)) await qemuImg.snapshotDelete(tmp, s.name);
    // Data first, then the record: the copy is on disk before instance.json says the clone exists.
    await fsyncFile(tmp);
    await rename(tmp, dst);
    await fsyncDir(dirname(dst));
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw mapDiskFull(e, dst, 'copy the disk');
  }
}

/** Clone the stopped instance `src` into a new instance `name`. */
export async function cloneInstance(paths: KumoPaths, src: string, name: string, o: CloneOptions = {}): Promise<CloneResult> {
  const em = new Emitter(o.onEvent);
  let rec = await readRecord(paths, src);
  const defaultKey = join(paths.keys, DEFAULT_KEY_NAME);
  const input: InstanceSpecInput = {
    name,
    image: rec.image.id ?? rec.image.ref,
    cpus: rec.cpus,
    memory: rec.memoryMiB,
    ...(rec.diskBytes !== undefined ? { disk: `${rec.diskBytes}B` } : {}),
    ...(rec.ssh.key !== defaultKey ? { sshKey: rec.ssh.key } : {}),
    accel: rec.accel,
    driver: rec.driver,
    timeout: rec.timeoutSec,
    user: rec.ssh.user,
    seedFormat: rec.seedFormat,
    firmware: rec.firmware,
    userDataText: CLONE_USER_DATA,
    // the clone shares the folders its source shares, over the same transports
    ...(rec.mounts?.length ? { mounts: rec.mounts.map((m) => ({ host: m.host, guest: m.guest, readOnly: m.readOnly, type: m.type })) } : {}),
    // the clone lives where its source lives (libvirt URI, pool, network)
    ...Object.fromEntries(['connect', 'pool', 'network'].filter((k) => rec.driverOptions?.[k] !== undefined).map((k) => [k, rec.driverOptions![k]])),
    // and on its private networks (with addresses of its own)
    ...(rec.networks?.length ? { networks: rec.networks.map((n) => n.network) } : {}),
  };
  const spec = validateSpec(input, { drivers: driverNames() }); // checks NEW's name before anything is touched (driverNames registers the built-in drivers and their option fields)
  await using _lock = await lockStopped(paths, src, 'clone', { ...o, usage: `kumo clone --stop ${src} ${name}` });
  rec = await readRecord(paths, src);
  const from = instanceFiles(paths, src).disk;
  const record = await createInstance(paths, spec, {
    image: { ...rec.image },
    makeDisk: (dst) => em.step('clone.disk', `copying the disk of ${src}`, () => copyDisk(from, dst)),
    ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  // A backend that keeps the disk state in its own media (VirtualBox) copies its machine too; on failure the new instance goes again.
  const driver = await getDriver(rec.driver);
  if (hasCapability(driver, 'clone')) {
    try {
      await em.step('clone.machine', `copying the ${driver.name} machine of ${src}`, () => driver.cloneMachine(runtimeFor(paths, rec), runtimeFor(paths, record)));
    } catch (e) {
      await rm(instanceFiles(paths, name).dir, { recursive: true, force: true }).catch(() => {});
      throw e;
    }
  }
  if (rec.ports.length) em.warn(`${rec.ports.length} port forward(s) of '${src}' were not copied to '${name}' (add them with 'kumo port add ${name} HOST:GUEST')`);
  return { record, from: src, droppedPorts: rec.ports.length };
}
