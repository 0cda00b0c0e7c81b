/**
 * `kumo capture NAME --image NEW`: turn a prepared instance into a golden image.
 *
 *   1. checks: NEW is a valid, unused image name; NAME exists and is stopped (or `stop: true`);
 *      the disk can hold the copy (qemu-img measure). Then NAME's lock is held to the end, so
 *      nobody starts or changes it meanwhile.
 *   2. seal (unless `seal: false`): a throw-away qcow2 overlay on NAME's disk in KUMO_HOME/tmp is
 *      booted with NAME's seed and keys; `sealScript()` runs as root over ssh and powers the copy
 *      off cleanly (see seal.ts). NAME's disk is only read (it is the copy's backing file).
 *   3. the stopped chain (copy → NAME's disk → base) is converted into ONE standalone,
 *      compressed qcow2 in the temp folder, then moved into the image store with its metadata
 *      (parent image, captured from, when, sealed). A failure at any step removes the temp folder
 *      and stops the copy: no half image reaches the store, and NAME is untouched.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { ConflictError, KumoError, TimeoutError } from '../core/errors.js';
import { ensurePrivateDir, removeQuietly } from '../core/fs.js';
import { Emitter } from '../events/events.js';
import { qemuImg } from '../disk/index.js';
import { getDriver, type Driver, type InstanceRuntime } from '../driver/index.js';
import { instanceFilesIn } from '../config/instance-files.js';
import { sshExec, waitReady } from '../guest/index.js';
import { checkImageName, findImage, importImage, type ImageRecord } from '../image/index.js';
import { instanceFiles, lockStopped, mapDiskFull, measureQcow2, readRecord, requireSpace, runtimeFor, sshTargetFor, type InstanceRecord, type StopFirstOptions } from '../instance/index.js';
import { SEAL_DONE_MARKER, SEAL_OPERATIONS, sealScript } from './seal.js';
import { sleep } from '../core/time.js';

export interface CaptureOptions extends StopFirstOptions {
  /** Name of the new image. */
  image: string;
  /** Seal the copy before storing it (default true). */
  seal?: boolean;
  /** Seconds to wait for the sealing copy to boot (default: the instance's readiness timeout). */
  timeoutSec?: number;
  /** Seconds to wait for the sealing copy to power off (default 300). */
  powerOffTimeoutSec?: number;
}

export interface CaptureResult {
  image: ImageRecord;
  from: string;
  sealed: boolean;
  /** ms spent in each phase. */
  timings: { seal?: number; convert: number; store: number };
}

export class ImageExistsError extends ConflictError {
  constructor(name: string) {
    super('IMAGE_EXISTS', `an image named '${name}' already exists`, {
      hint: `choose another name, or remove the old one first: kumo image rm ${name}`,
      details: { image: name },
    });
  }
}

/** Metadata stored with a captured image. */
export function captureMetadata(rec: InstanceRecord, sealed: boolean, at = new Date()): Record<string, unknown> {
  return {
    parentImage: { ref: rec.image.ref, ...(rec.image.id ? { id: rec.image.id } : {}) },
    capturedFrom: { instance: rec.name, instanceId: rec.instanceId },
    capturedAt: at.toISOString(),
    sealed,
    ...(sealed ? { sealOperations: SEAL_OPERATIONS.map((o) => o.id) } : {}),
  };
}


/** Boot a copy of the instance on `overlay`, seal it over ssh, and wait for its clean power-off. */
async function sealCopy(paths: KumoPaths, rec: InstanceRecord, driver: Driver, work: string, overlay: string, o: CaptureOptions, em: Emitter): Promise<void> {
  const rt: InstanceRuntime = { ...runtimeFor(paths, rec), name: `${rec.name}-capture`, dir: work, disk: { path: overlay, format: 'qcow2' }, sshPort: 0, ports: [] };
  const serialLog = driver.consoleLogPath?.(rt) ?? instanceFilesIn(work).serialLog;
  let started = false;
  try {
    const res = await em.step('capture.boot', `booting a copy of ${rec.name} to seal it`, () => driver.start(rt, { ...(o.onEvent ? { onEvent: o.onEvent } : {}), ...(o.signal ? { signal: o.signal } : {}) }));
    started = true;
    // Where the copy's sshd is reached: the driver's endpoint (a libvirt network address), else the forwarded port.
    const ep = (await driver.sshEndpoint?.(rt)) ?? { host: '127.0.0.1', port: res.sshPort };
    const target = { ...sshTargetFor(paths, { ...rec, ssh: { ...rec.ssh, port: ep.port } }), host: ep.host };
    await waitReady(target, {
      instanceId: rec.instanceId,
      serialLog,
      timeoutMs: (o.timeoutSec ?? rec.timeoutSec) * 1000,
      checkAlive: async () => {
        const st = await driver.status(rt);
        return st.state === 'stopped' || st.state === 'crashed' ? st.detail ?? 'QEMU exited' : undefined;
      },
      ...(o.onEvent ? { onEvent: o.onEvent } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    await em.step('capture.seal', 'sealing (machine-id, host keys, cloud-init, logs, histories, leases, caches)', async () => {
      const r = await sshExec(target, 'sudo -n sh -s poweroff', { input: sealScript(), timeoutMs: 10 * 60_000, ...(o.signal ? { signal: o.signal } : {}) });
      // ssh may report 255 when the power-off cuts the session; the marker says the script finished.
      if (!r.stdout.includes(SEAL_DONE_MARKER))
        throw new KumoError('SEAL_FAILED', 'external', `sealing the copy of '${rec.name}' failed (exit ${r.code})${r.stderr.trim() ? `:\n${r.stderr.trim().split('\n').slice(-8).join('\n')}` : ''}`, {
          hint: 'the instance itself was not changed; run again with --debug, or capture without sealing (--no-seal)',
        });
    });
    await em.step('capture.poweroff', 'waiting for the copy to power off', async () => {
      const end = Date.now() + (o.powerOffTimeoutSec ?? 300) * 1000;
      for (;;) {
        const st = await driver.status(rt);
        if (st.state === 'stopped' || st.state === 'crashed') break;
        if (o.signal?.aborted) throw o.signal.reason ?? new Error('interrupted');
        if (Date.now() > end)
          throw new TimeoutError('SEAL_POWEROFF_TIMEOUT', `the sealing copy of '${rec.name}' did not power off within ${o.powerOffTimeoutSec ?? 300} s`, {
            hint: 'the instance itself was not changed; nothing was stored. Try again, or capture without sealing (--no-seal)',
          });
        await sleep(500);
      }
      started = false;
      await driver.cleanup(rt);
      await driver.purge?.(rt); // a libvirt copy's domain must not outlive the capture
    });
  } finally {
    if (started) {
      await driver.stop(rt, { force: true }).catch(() => {});
      await driver.cleanup(rt).catch(() => {});
      await driver.purge?.(rt).catch(() => {});
    }
  }
}

/** Seal a copy of the stopped instance `name` and store it as the image `o.image`. */
export async function captureInstance(paths: KumoPaths, name: string, o: CaptureOptions): Promise<CaptureResult> {
  const em = new Emitter(o.onEvent);
  checkImageName(o.image);
  if (await findImage(paths, o.image)) throw new ImageExistsError(o.image);
  await readRecord(paths, name);
  await using _lock = await lockStopped(paths, name, 'capture', { ...o, usage: `kumo capture --stop ${name} --image ${o.image}` });
  const rec = await readRecord(paths, name);
  const driver = await getDriver(rec.driver);
  const disk = instanceFiles(paths, name).disk;
  const seal = o.seal !== false;

  await ensurePrivateDir(paths.tmp);
  const need = await measureQcow2(disk);
  await requireSpace(paths.tmp, need, `capture instance '${name}'`);
  const work = await mkdtemp(join(paths.tmp, `capture-${name}-`));
  const timings: CaptureResult['timings'] = { convert: 0, store: 0 };
  try {
    let source = disk;
    if (seal) {
      const overlay = join(work, 'seal.qcow2');
      await qemuImg.createOverlay(overlay, { backing: disk, backingFormat: 'qcow2' });
      const t = Date.now();
      await sealCopy(paths, rec, driver, work, overlay, o, em);
      timings.seal = Date.now() - t;
      source = overlay;
    }
    const out = join(work, 'image.qcow2');
    let t = Date.now();
    try {
      await em.step('capture.convert', 'writing a standalone compressed qcow2', () =>
        qemuImg.convert(source, out, { outFormat: 'qcow2', inFormat: 'qcow2', compress: true, ...(o.onEvent ? { onEvent: o.onEvent } : {}), ...(o.signal ? { signal: o.signal } : {}) }),
      );
    } catch (e) {
      throw mapDiskFull(e, paths.tmp, `capture instance '${name}'`);
    }
    timings.convert = Date.now() - t;
    if (await findImage(paths, o.image)) throw new ImageExistsError(o.image);
    t = Date.now();
    let image: ImageRecord;
    try {
      image = await importImage(paths, out, {
        name: o.image,
        move: true,
        metadata: captureMetadata(rec, seal),
        source: { kind: 'captured', instance: name, ...(rec.image.id ? { parent: rec.image.id } : {}) },
        ...(o.onEvent ? { onEvent: o.onEvent } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (e) {
      throw mapDiskFull(e, paths.images, `store image '${o.image}'`);
    }
    timings.store = Date.now() - t;
    return { image, from: name, sealed: seal, timings };
  } finally {
    await removeQuietly(work);
  }
}
