/**
 * Warm templates as use cases: make one (`kumo image warm`), find the one a launch can use, create
 * an instance from it (a clone), list who uses a template, remove one. The template store itself
 * (layout, key, records) is src/template/store.ts.
 *
 * Making a template is an ordinary instance boot in a private folder (templates/.warm-ID-PID/),
 * with the guest's RAM in a shared file: once the guest is ready (ssh + cloud-init done) and the
 * guest agent answers, kumo closes its ssh connection, saves the device state with
 * x-ignore-shared (QEMU quits), renames the folder to templates/ID and writes template.json last.
 * A clone's disk is a new overlay on the template's frozen disk; its first start restores the
 * state with the RAM file mapped private, then gives it its own identity (src/guest/identity.ts).
 */
import { copyFile, chmod, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { instanceFilesIn } from '../config/instance-files.js';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { validateSpec, type InstanceSpec, type InstanceSpecInput } from '../config/spec.js';
import { ConflictError, KumoError } from '../core/errors.js';
import { exists, hashFile } from '../core/fs.js';
import { pidAlive } from '../core/exec.js';
import { Emitter } from '../events/events.js';
import { driverNames, getDriver, hasCapability, requireCapability, type Driver, type InstanceRuntime, type TemplateHost } from '../driver/index.js';
import { ensureDefaultKey, userKey } from '../guest/keys.js';
import { withAgent } from '../guest/agent.js';
import { closeMaster } from '../guest/master.js';
import { qemuImg } from '../disk/index.js';
import { listImages } from '../image/index.js';
import {
  freezeTemplateFiles,
  listTemplates,
  lockTemplate,
  onDiskBytes,
  readTemplate,
  removeTemplateFolder,
  templateFiles,
  templateIdOf,
  writeTemplateRecord,
  TEMPLATE_VERSION,
  type TemplateKey,
  type TemplateRecord,
} from '../template/store.js';
import { createInstance, resolveImage, type BaseImage } from './create.js';
import { startInstance } from './power.js';
import { sshTargetFor } from './ssh-target.js';
import { instanceFiles, listNames, readRecord, runtimeFor, writeRecord, type InstanceRecord, type OpOptions } from './store.js';

export interface WarmOptions extends OpOptions {
  /** Remake the template even when a current one exists (refused while clones use it). */
  refresh?: boolean;
  cwd?: string;
}

export interface WarmResult {
  template: TemplateRecord;
  /** 'made' (new), 'current' (an intact one existed), 'refreshed'. */
  outcome: 'made' | 'current' | 'refreshed';
}

/** Why a launch cannot use a template (then it boots cold and says this), or undefined when it can. */
export function templateIneligible(spec: InstanceSpec, driver: Driver): string | undefined {
  if (!hasCapability(driver, 'templates') || !hasCapability(driver, 'suspend')) return `the ${driver.name} driver has no warm templates`;
  if (spec.userDataPath !== undefined || spec.userDataText !== undefined) return 'custom user-data runs at first boot';
  // virtiofs needs a shared memory of its own, and QEMU cannot save a machine with shared folders
  if (spec.mounts?.length) return 'shared folders are set up at boot (and QEMU cannot save such a machine)';
  if (spec.networks?.length) return 'a template has no NIC on private networks';
  return undefined;
}

/** The key a template for this spec (and base image) has on this host. */
export async function templateKeyFor(paths: KumoPaths, spec: InstanceSpec, image: BaseImage, driver: Driver): Promise<TemplateKey> {
  const d = requireCapability(driver, 'templates', 'make warm templates');
  if (!image.id) throw new KumoError('TEMPLATE_UNSUPPORTED', 'usage', `image '${image.ref}' is not in the store`, { hint: 'templates are made from stored images' });
  const login = spec.sshKey ? await userKey(spec.sshKey) : await ensureDefaultKey(paths);
  const host = await d.templateHost({ paths, accel: spec.accel } as InstanceRuntime);
  return {
    driver: driver.name,
    imageId: image.id,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    diskBytes: spec.diskBytes ?? image.virtualSize ?? 0,
    firmware: spec.firmware,
    seedFormat: spec.seedFormat,
    user: spec.user,
    loginKey: login.publicKey.split(/\s+/).slice(0, 2).join(' '),
    host,
  };
}

/** The instances cloned from template `id` (their disks sit on its disk). */
export async function templateUsers(paths: KumoPaths, id: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of await listNames(paths)) {
    const rec = await readRecord(paths, n).catch(() => undefined);
    if (rec?.template?.id === id) out.push(n);
  }
  return out;
}

/** Remove the leftovers of warms whose process died (kill -9): their QEMU and their folder. */
export async function sweepWarmLeftovers(paths: KumoPaths): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(paths.templates);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const n of names) {
    const m = /^\.warm-[0-9a-f]{16}-(\d+)$/.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    const dir = join(paths.templates, n);
    const wpaths = { ...paths, instances: dir };
    for (const inst of await readdir(dir).catch(() => [] as string[])) {
      try {
        const rec = await readRecord(wpaths, inst);
        const driver = await getDriver(rec.driver);
        await driver.stop(runtimeFor(wpaths, rec), { force: true });
      } catch {
        /* nothing running there */
      }
    }
    await rm(dir, { recursive: true, force: true });
    swept.push(n);
  }
  return swept;
}

/** Make (or refresh) the warm template for an image and machine shape. */
export async function warmTemplate(paths: KumoPaths, input: Omit<InstanceSpecInput, 'name'>, opts: WarmOptions = {}): Promise<WarmResult> {
  const em = new Emitter(opts.onEvent);
  const spec = validateSpec({ ...input, name: 'warm' }, { ...(opts.cwd ? { cwd: opts.cwd } : {}), drivers: driverNames() });
  const driver = await getDriver(spec.driver);
  const why = templateIneligible(spec, driver);
  if (why)
    throw new KumoError('TEMPLATE_UNSUPPORTED', 'usage', `cannot make a warm template: ${why}`, {
      hint: hasCapability(driver, 'templates')
        ? 'templates are made from the image as it is; run your user-data on the clones (kumo exec)'
        : `use --driver qemu; the ${driver.name} driver suspends and resumes (kumo suspend) but has no templates`,
    });
  await sweepWarmLeftovers(paths);
  const image = await em.step('image', `image ${spec.image}`, () => resolveImage(paths, spec.image, opts));
  const key = await templateKeyFor(paths, spec, image, driver);
  const id = templateIdOf(key);
  const tf = templateFiles(paths, id);
  await using _lock = await lockTemplate(paths, id, 'warm', opts.signal);
  let outcome: WarmResult['outcome'] = 'made';
  if (await exists(tf.record)) {
    const cur = await readTemplate(paths, id);
    const intact = (await exists(tf.state)) && (await exists(tf.memory)) && (await exists(tf.disk));
    if (intact && !opts.refresh) return { template: cur, outcome: 'current' };
    const users = await templateUsers(paths, id);
    if (users.length)
      throw new ConflictError('TEMPLATE_IN_USE', `template ${id} is used by ${users.length} instance(s): ${users.join(', ')}`, {
        hint: `delete them first (kumo delete ${users.join(' ')}), then warm again`,
      });
    await removeTemplateFolder(paths, id);
    outcome = 'refreshed';
  } else if (await exists(tf.dir)) {
    await rm(tf.dir, { recursive: true, force: true }); // an unfinished one
  }

  const work = join(paths.templates, `.warm-${id}-${process.pid}`);
  await mkdir(work, { recursive: true, mode: 0o700 });
  const wpaths: KumoPaths = { ...paths, instances: work };
  const name = `tpl-${id.slice(0, 8)}`;
  const wdir = instanceFiles(wpaths, name).dir;
  const memory = join(wdir, 'memory');
  let rt: InstanceRuntime | undefined;
  try {
    let rec = await createInstance(wpaths, { ...spec, name }, { image, ...(opts.onEvent ? { onEvent: opts.onEvent } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    rec = { ...rec, run: { memoryFile: memory, memoryShared: true, machine: key.host.machine } };
    await writeRecord(wpaths, rec);
    const t0 = Date.now();
    const started = await startInstance(wpaths, name, { ...opts, wait: true });
    const bootMs = Date.now() - t0;
    rec = started.record;
    rt = runtimeFor(wpaths, rec);
    // The agent answers (then clones get their identity through it), and what the frozen guest is called.
    const guest = await em.step('agent', 'guest agent', () =>
      withAgent(instanceFiles(wpaths, name).agentSocket, (a) => a.exec('/bin/sh', ['-c', 'hostname; cat /etc/machine-id']), 20_000).then(
        (r) => {
          const [hostname = '', machineId = ''] = r.stdout.trim().split('\n');
          return { hostname, machineId, instanceId: rec.instanceId };
        },
        () => undefined,
      ),
    );
    const agent = guest !== undefined;
    if (!agent) em.warn(`the guest agent of ${spec.image} does not answer: clones get their identity over ssh (slower); build images with the qemu-guest-agent element`);
    // No connection of kumo's may be frozen into the template.
    await closeMaster(sshTargetFor(wpaths, rec));
    const d = requireCapability(driver, 'suspend', 'save machine states');
    const saved = await em.step('save', 'saving the ready machine', () => d.saveState(rt!, join(wdir, 'state'), { ignoreShared: true, ...(opts.signal ? { signal: opts.signal } : {}) }));
    rt = undefined;
    if (saved.machine !== key.host.machine) throw new KumoError('STATE_SAVE_FAILED', 'external', `QEMU ran machine type ${saved.machine}, not ${key.host.machine}`, { hint: 'report this as a bug' });
    await rename(wdir, tf.dir);
    const f = templateFiles(paths, id);
    const hostKeyPublic = (await readFile(`${instanceFilesIn(f.dir).hostKey}.pub`, 'utf8')).trim();
    await freezeTemplateFiles(f);
    const tpl: TemplateRecord = {
      version: TEMPLATE_VERSION,
      id,
      key,
      created: new Date().toISOString(),
      image: { id: image.id!, ref: spec.image, path: image.path, format: image.format },
      mac: rec.mac,
      hostKeyPublic,
      agent,
      ...(guest ? { guest } : {}),
      stateSha256: await hashFile(f.state),
      sizes: {
        stateBytes: saved.bytes,
        memoryBytes: spec.memoryMiB * 1048576,
        memoryOnDiskBytes: await onDiskBytes(f.memory),
        diskOnDiskBytes: await onDiskBytes(f.disk),
      },
      timings: { bootMs, saveMs: saved.ms },
    };
    await writeTemplateRecord(paths, tpl);
    em.info(`template ${id}: ${spec.image}, ${spec.cpus} cpu, ${spec.memoryMiB} MiB; state ${Math.round(saved.bytes / 1024)} KiB, RAM file ${Math.round(tpl.sizes.memoryOnDiskBytes / 1048576)} MiB on disk`);
    return { template: tpl, outcome };
  } catch (e) {
    if (rt) await driver.stop(rt, { force: true }).catch(() => {});
    else {
      const rec = await readRecord(wpaths, name).catch(() => undefined);
      if (rec) await driver.stop(runtimeFor(wpaths, rec), { force: true }).catch(() => {});
    }
    if (!(await exists(tf.record))) await rm(tf.dir, { recursive: true, force: true }).catch(() => {});
    throw e;
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}

/** The template a launch of `spec` can use on this host, or why none (a reason to say). */
export async function templateFor(paths: KumoPaths, spec: InstanceSpec, image: BaseImage, driver: Driver): Promise<{ template?: TemplateRecord; reason?: string }> {
  const why = templateIneligible(spec, driver);
  if (why) return { reason: why };
  // Most launches have no template of their image: say so before asking QEMU about the host.
  const same = (await listTemplates(paths)).filter((t) => t.key.imageId === image.id);
  if (!same.length) return { reason: `no warm template for this image (kumo image warm ${spec.image} makes one)` };
  const key = await templateKeyFor(paths, spec, image, driver);
  const id = templateIdOf(key);
  const f = templateFiles(paths, id);
  if (await exists(f.record)) {
    const t = await readTemplate(paths, id);
    if (!(await exists(f.state)) || !(await exists(f.memory)) || !(await exists(f.disk))) return { reason: `template ${id} is damaged (files missing); 'kumo image warm --refresh' remakes it` };
    return { template: t };
  }
  // Say why a template of the same image is not used (another shape, another QEMU).
  const t = same[0]!;
  const diffs: string[] = [];
  if (t.key.host.version !== key.host.version) diffs.push(`QEMU ${t.key.host.version} made it, this host has ${key.host.version}`);
  if (t.key.host.machine !== key.host.machine) diffs.push(`machine ${t.key.host.machine}, here ${key.host.machine}`);
  if (t.key.host.accel !== key.host.accel) diffs.push(`accelerator ${t.key.host.accel}, here ${key.host.accel}`);
  if (t.key.cpus !== key.cpus || t.key.memoryMiB !== key.memoryMiB) diffs.push(`its shape is ${t.key.cpus} cpu / ${t.key.memoryMiB} MiB, asked ${key.cpus} / ${key.memoryMiB}`);
  if (t.key.diskBytes !== key.diskBytes) diffs.push('another disk size');
  if (t.key.firmware !== key.firmware) diffs.push(`firmware ${t.key.firmware}`);
  if (t.key.seedFormat !== key.seedFormat) diffs.push(`seed ${t.key.seedFormat}`);
  if (t.key.user !== key.user || t.key.loginKey !== key.loginKey) diffs.push('another login user or key');
  return { reason: `template ${t.id} of this image does not match: ${diffs.join('; ') || 'another key'}` };
}

/** Create an instance as a clone of a template: an overlay on its disk; the first start restores it. */
export async function createFromTemplate(paths: KumoPaths, spec: InstanceSpec, tpl: TemplateRecord, image: BaseImage, opts: OpOptions & { cwd?: string } = {}): Promise<InstanceRecord> {
  const f = templateFiles(paths, tpl.id);
  await using _lock = await lockTemplate(paths, tpl.id, 'clone', opts.signal);
  if (!(await exists(f.record))) throw new KumoError('TEMPLATE_GONE', 'conflict', `template ${tpl.id} was removed meanwhile`, { hint: 'launch again (it boots cold), or warm the image again' });
  const rec = await createInstance(paths, spec, {
    image,
    ...opts,
    makeDisk: async (p) => {
      await qemuImg.createOverlay(p, { backing: f.disk, backingFormat: 'qcow2' });
      if (tpl.key.firmware === 'uefi') {
        const vars = instanceFiles(paths, spec.name).efiVars;
        await copyFile(f.efiVars, vars);
        await chmod(vars, 0o600);
      }
    },
    extra: (r) => ({
      mac: tpl.mac,
      template: { id: tpl.id, dir: f.dir, ...(tpl.guest?.instanceId ? { instanceId: tpl.guest.instanceId } : {}) },
      restore: { kind: 'template', stateFile: f.state, ignoreShared: true, machine: tpl.key.host.machine, memoryFile: f.memory, at: new Date().toISOString() },
      ...(r.diskBytes === undefined ? { diskBytes: tpl.key.diskBytes } : {}),
    }),
  });
  return rec;
}

/** Remove a template no instance uses. */
export async function removeTemplate(paths: KumoPaths, id: string, o: OpOptions = {}): Promise<void> {
  await using _lock = await lockTemplate(paths, id, 'remove', o.signal);
  await readTemplate(paths, id);
  const users = await templateUsers(paths, id);
  if (users.length)
    throw new ConflictError('TEMPLATE_IN_USE', `template ${id} is used by ${users.length} instance(s): ${users.join(', ')}`, { hint: `delete them first: kumo delete ${users.join(' ')}` });
  await removeTemplateFolder(paths, id);
}

/** Whether the template's state file is still the one it was made with (checked before a restore). */
export async function templateStateIntact(paths: KumoPaths, tpl: TemplateRecord): Promise<boolean> {
  const f = templateFiles(paths, tpl.id);
  if (!(await exists(f.state)) || !(await exists(f.memory))) return false;
  return (await hashFile(f.state)) === tpl.stateSha256;
}

export interface TemplatePruneResult {
  removed: { id: string; why: string }[];
  kept: { id: string; why: string }[];
}

/**
 * Remove templates no clone uses that cannot serve a launch any more: made by another QEMU
 * version or machine type than this host's, or of a base image that is gone or superseded (a
 * newer version of its alias). With `all`, every unused template. Runs before the image prune,
 * so that the base images they kept in use can go too.
 */
export async function pruneTemplates(paths: KumoPaths, o: { dryRun?: boolean; all?: boolean } & OpOptions = {}): Promise<TemplatePruneResult> {
  const out: TemplatePruneResult = { removed: [], kept: [] };
  await sweepWarmLeftovers(paths);
  const images = new Map((await listImages(paths)).map((r) => [r.id, r]));
  const hosts = new Map<string, TemplateHost | undefined>();
  for (const t of await listTemplates(paths)) {
    const users = await templateUsers(paths, t.id);
    if (users.length) {
      out.kept.push({ id: t.id, why: `used by ${users.join(', ')}` });
      continue;
    }
    const img = images.get(t.key.imageId);
    let why: string | undefined;
    if (!img) why = 'its base image is gone';
    else if (img.supersededBy) why = 'its base image is superseded';
    else {
      const hk = `${t.key.driver}:${t.key.host.accel}`;
      if (!hosts.has(hk)) hosts.set(hk, await templateHostFor(paths, t).catch(() => undefined));
      const h = hosts.get(hk);
      if (h && (h.version !== t.key.host.version || h.machine !== t.key.host.machine)) why = `made by ${t.key.host.hypervisor} ${t.key.host.version} (${t.key.host.machine}); this host has ${h.version} (${h.machine})`;
      else if (o.all) why = 'unused';
    }
    if (!why) {
      out.kept.push({ id: t.id, why: 'current' });
      continue;
    }
    out.removed.push({ id: t.id, why });
    if (!o.dryRun) await removeTemplate(paths, t.id, o);
  }
  return out;
}

async function templateHostFor(paths: KumoPaths, t: TemplateRecord): Promise<TemplateHost> {
  const d = requireCapability(await getDriver(t.key.driver), 'templates', 'make warm templates');
  return d.templateHost({ paths, accel: t.key.host.accel } as InstanceRuntime);
}
