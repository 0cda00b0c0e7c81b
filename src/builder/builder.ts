/**
 * The image builder: bootstrap a root tree from distribution packages (cached), run the
 * elements' phases in it, build the disk (see disk.ts) and write the output atomically.
 *
 * Isolation and cleanup: every command that touches the tree runs under
 * `unshare --mount --pid --fork --kill-child --propagation private`, so the /proc, /sys, /dev
 * mounts of the chroot and every process a package's maintainer script starts exist only in a
 * namespace that dies with the command. No loop devices are used. The work folder is removed
 * on success, failure and interruption; the output appears only when complete.
 */
import { createWriteStream, readFileSync, readdirSync, statSync, existsSync, type WriteStream } from 'node:fs';
import { mkdir, rm, rename, copyFile, writeFile, readFile, chmod, readdir, lstat, symlink, readlink, unlink, stat, open } from 'node:fs/promises';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { join, dirname, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, pidAlive, type RunOptions } from '../core/exec.js';
import { InterruptedError, KumoError, fsError } from '../core/errors.js';
import { Emitter, type EventSink } from '../events/events.js';
import { bootstrapArgv, resolveDistro, type ResolvedDistro } from './distro.js';
import { loadElementSet, elementSearchPath, elementFiles, builtinElementsDir, IN_CHROOT, PACKAGE_PHASES, PHASES, type ElementSet, type Phase } from './elements.js';
import { assembleDisk, planLayout, ROOT_LABEL } from './disk.js';
import { requireSize } from '../core/units.js';
import { ScriptFailedError, MirrorUnreachableError, NotRootError, KeyringMissingError, buildDiskFull, isBuildDiskFull } from './errors.js';
import { hashFile } from '../core/fs.js';

export interface BuildOptions {
  distro?: string;
  release?: string;
  /** Elements asked for; the distro's base element and their dependencies are added. */
  elements?: string[];
  elementsPath?: string[];
  /** Virtual disk size, e.g. '4G'. Default 4G (the root partition grows to it on first boot). */
  size?: string;
  format?: 'qcow2' | 'raw';
  /** qcow2 only: compress the clusters (smaller file, slower guest reads). */
  compress?: boolean;
  mirror?: string;
  /** Where the image is written (atomically). */
  output: string;
  /** Build caches (bootstrap trees, apt archives and lists) and logs; work folders go here too. */
  cacheDir: string;
  /** Do not read or write the caches. */
  noCache?: boolean;
  /** Extra environment for element scripts. */
  env?: Record<string, string>;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export interface PackageEntry {
  name: string;
  version: string;
}

export interface BuildResult {
  path: string;
  format: 'qcow2' | 'raw';
  distro: string;
  release: string;
  elements: string[];
  packages: PackageEntry[];
  sizeBytes: number;
  virtualSizeBytes: number;
  sha256: string;
  buildSeconds: number;
  builtAt: string;
  logFile: string;
  bootstrapCached: boolean;
}

const ARCH = 'amd64';
const IN_TARGET = '/tmp/kumo-build';

function runnerDir(): string {
  return join(builtinElementsDir(), '.runner');
}

/** The base element of a distribution (the element named after it). */
export function defaultElements(distro: string): string[] {
  return [distro, 'vm', 'cloud-init', 'openssh-server', 'growroot', 'fast-boot', 'sysprep'];
}

/** Elements actually built: the distro's base element first, then the requested ones. */
export function requestedElements(distro: string, elements: readonly string[] | undefined): string[] {
  const req = elements && elements.length ? [...elements] : defaultElements(distro).slice(1);
  return [distro, ...req.filter((e) => e !== distro)];
}

/**
 * The recipe of a build: a hash of everything that decides the image — the elements' files,
 * the builder's own code (this folder and the runner scripts) and the options. Synchronous, so
 * test helpers can find a cached image without building.
 */
export function recipeHash(o: { distro?: string; release?: string; elements?: string[]; elementsPath?: string[]; size?: string; format?: string; compress?: boolean; mirror?: string; env?: Record<string, string> }): string {
  const distro = o.distro ?? 'debian';
  const d = resolveDistro(distro, o.release, o.mirror);
  const set = loadElementSet(requestedElements(distro, o.elements), elementSearchPath(o.elementsPath ?? []));
  const h = createHash('sha256');
  h.update(JSON.stringify({ distro, release: d.release, mirror: d.mirror, size: o.size ?? '4G', format: o.format ?? 'qcow2', compress: !!o.compress, env: o.env ?? {}, elements: set.elements.map((e) => e.name) }));
  for (const f of elementFiles(set.elements)) h.update(`\0${f.element}/${f.rel}\0${f.mode}\0`).update(f.data);
  const self = dirname(fileURLToPath(import.meta.url));
  for (const dir of [self, runnerDir()])
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      if (statSync(p).isFile() && !n.endsWith('.d.ts')) h.update(`\0${n}\0`).update(readFileSync(p));
    }
  return h.digest('hex');
}

class BuildLog {
  private stream: WriteStream;
  private tail: string[] = [];
  private partial = '';
  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { flags: 'a', mode: 0o644 });
    // A full disk must not crash the build through the log: remember it and stop writing.
    this.stream.on('error', (e) => {
      this.failed = e as NodeJS.ErrnoException;
    });
  }
  failed: NodeJS.ErrnoException | undefined;
  private write(data: string | Buffer): void {
    if (!this.failed && !this.stream.destroyed) this.stream.write(data);
  }
  line(s: string): void {
    this.write(s.endsWith('\n') ? s : s + '\n');
  }
  /** Start a fresh tail (the lines shown when the next command fails). */
  resetTail(): void {
    this.tail = [];
    this.partial = '';
  }
  chunk(c: Buffer): void {
    this.write(c);
    const parts = (this.partial + c.toString('utf8')).split('\n');
    this.partial = parts.pop() ?? '';
    this.tail.push(...parts.map((l) => l.replace(/\r/g, '')).filter((l) => l.trim()));
    if (this.tail.length > 200) this.tail = this.tail.slice(-100);
  }
  lastLines(n = 15): string[] {
    return [...this.tail, ...(this.partial.trim() ? [this.partial] : [])].slice(-n);
  }
  close(): Promise<void> {
    if (this.failed || this.stream.destroyed) return Promise.resolve();
    return new Promise((r) => {
      this.stream.once('error', () => r());
      this.stream.end(() => r());
    });
  }
}

function nsArgv(cmd: string[]): [string, string[]] {
  return ['unshare', ['--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', '--', ...cmd]];
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new InterruptedError('the image build was interrupted');
}

async function mirrorCheck(d: ResolvedDistro, signal?: AbortSignal): Promise<void> {
  const url = `${d.mirror.replace(/\/$/, '')}/dists/${d.info.suite}/Release`;
  try {
    const ctl = AbortSignal.timeout(20_000);
    const res = await fetch(url, { method: 'HEAD', signal: signal ? AbortSignal.any([ctl, signal]) : ctl });
    if (!res.ok) throw new MirrorUnreachableError(d.mirror, `${url} answered HTTP ${res.status}`);
  } catch (e) {
    checkAbort(signal);
    if (e instanceof KumoError) throw e;
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new MirrorUnreachableError(d.mirror, c?.code ?? c?.message ?? (e as Error).message);
  }
}

/** Remove work folders of builds whose process is gone (killed with SIGKILL, machine crashed). */
async function sweepStaleWork(workRoot: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(workRoot);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^build-(\d+)-/.exec(n);
    if (m && !pidAlive(Number(m[1]))) await safeRemoveTree(join(workRoot, n));
  }
}

/** rm -rf a work folder, refusing to descend into anything still mounted below it. */
export async function safeRemoveTree(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(dir + '/')))
    .sort()
    .reverse();
  for (const m of mounts) await run('umount', ['-l', m], { allowFailure: true });
  await rm(dir, { recursive: true, force: true, maxRetries: 2 });
}

/** Build an image. Needs root. */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const t0 = Date.now();
  const em = new Emitter(opts.onEvent);
  const signal = opts.signal;
  if (process.getuid?.() !== 0) throw new NotRootError();
  const distroName = opts.distro ?? 'debian';
  const d = resolveDistro(distroName, opts.release, opts.mirror);
  // the bootstrap is verified by signature or not made at all (checked before anything is made)
  if (!existsSync(d.distro.keyring)) throw new KeyringMissingError(d.distro.name, d.distro.keyring, d.distro.keyringPackage);
  const requested = requestedElements(distroName, opts.elements);
  const set = loadElementSet(requested, elementSearchPath(opts.elementsPath ?? []));
  const format = opts.format ?? 'qcow2';
  const sizeBytes = requireSize(opts.size ?? '4G');
  const output = resolve(opts.output);
  const cache = resolve(opts.cacheDir);

  const logs = join(cache, 'logs');
  const workRoot = join(cache, 'work');
  for (const p of [cache, logs, workRoot]) await mkdir(p, { recursive: true, mode: 0o700 }).catch((e) => Promise.reject(fsError(e, p, 'create folder')));
  await sweepStaleWork(workRoot);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const log = new BuildLog(join(logs, `build-${stamp}-${process.pid}.log`));
  log.line(`kumo image build: ${d.distro.name} ${d.release}, elements: ${set.elements.map((e) => e.name).join(' ')}, output ${output}`);
  em.info(`build log: ${log.path}`, 'build');

  const work = join(workRoot, `build-${process.pid}-${randomBytes(4).toString('hex')}`);
  const target = join(work, 'root');
  const archives = opts.noCache ? join(work, 'apt-archives') : join(cache, 'apt', 'archives');
  const lists = opts.noCache ? join(work, 'apt-lists') : join(cache, 'apt', 'lists');
  // an unpredictable temp name beside the output, claimed with O_EXCL before anything writes it
  const tmpOut = join(dirname(output), `.${basename(output)}.partial-${process.pid}-${randomBytes(6).toString('hex')}`);
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LC_ALL: 'C',
    LANG: 'C',
    DEBIAN_FRONTEND: 'noninteractive',
    TARGET_ROOT: target,
    DISTRO_NAME: d.distro.name,
    DIB_RELEASE: d.release,
    DIB_DISTRIBUTION_MIRROR: d.mirror,
    KUMO_DISTRO: d.distro.name,
    KUMO_RELEASE: d.release,
    KUMO_MIRROR: d.mirror,
    KUMO_ARCH: ARCH,
    KUMO_KERNEL_PACKAGE: d.distro.kernelPackage,
    KUMO_ROOT_LABEL: ROOT_LABEL,
    KUMO_ELEMENTS: set.elements.map((e) => e.name).join(' '),
    IMAGE_ELEMENT: set.elements.map((e) => e.name).join(' '),
    ...(opts.env ?? {}),
  };

  /** Run a program with its output going to the log; a failure names `what` and shows the last lines. */
  const logged = async (what: string, cmd: string, args: string[], extra: RunOptions = {}) => {
    checkAbort(signal);
    log.resetTail();
    log.line(`\n=== ${what}: ${[cmd, ...args].join(' ')}`);
    const r = await run(cmd, args, { env, ...extra, signal, allowFailure: true, maxBuffer: 1 << 20, onStdout: (c) => log.chunk(c), onStderr: (c) => log.chunk(c) });
    checkAbort(signal);
    if (r.code !== 0) {
      const tail = log.lastLines();
      if (tail.some((l) => /No space left on device/i.test(l))) throw buildDiskFull(what, log.path);
      throw new ScriptFailedError(what, r.code !== null ? `exit status ${r.code}` : `killed by ${r.signal}`, tail, log.path);
    }
    return r;
  };
  const inChroot = (what: string, cmd: string[]) => {
    const [u, a] = nsArgv([join(runnerDir(), 'kumo-chroot'), target, archives, lists, `${IN_TARGET}/run-script`, `${IN_TARGET}/env`, ...cmd]);
    return logged(what, u, a);
  };
  const onHost = (what: string, cmd: string[]) => {
    const [u, a] = nsArgv([join(runnerDir(), 'run-script'), join(work, 'env'), ...cmd]);
    return logged(what, u, a);
  };

  let bootstrapCached = false;
  let ok = false;
  try {
    await mkdir(work, { recursive: true, mode: 0o700 });
    await mkdir(archives, { recursive: true });
    await mkdir(join(lists, 'partial'), { recursive: true });
    await mkdir(target, { recursive: true });

    // 1. the root tree from the distribution's packages (cached as a tarball of the fresh tree)
    const bsKey = createHash('sha256').update(JSON.stringify([d.distro.name, d.info.suite, d.distro.variant, d.mirror, ARCH, d.distro.components])).digest('hex').slice(0, 12);
    const bsTar = join(cache, 'bootstrap', `${d.distro.name}-${d.release}-${ARCH}-${d.distro.variant}-${bsKey}.tar`);
    await em.step('build.bootstrap', `bootstrap ${d.distro.name} ${d.release}`, async () => {
      if (!opts.noCache && existsSync(bsTar)) {
        bootstrapCached = true;
        await logged('unpack the cached bootstrap', 'tar', ['-xpf', bsTar, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', target]);
        return;
      }
      await mirrorCheck(d, signal);
      const [u, a] = nsArgv(bootstrapArgv(d, { arch: ARCH, cacheDir: archives, target }));
      try {
        await logged(`${d.distro.bootstrap} ${d.info.suite}`, u, a);
      } catch (e) {
        if (e instanceof ScriptFailedError && /Failed getting release|Couldn't download|Temporary failure resolving|Could not resolve|Connection refused/i.test(e.message))
          throw new MirrorUnreachableError(d.mirror, 'debootstrap could not download from it');
        throw e;
      }
      // the bootstrap leaves its packages and lists in the tree: keep the packages in the cache, drop both from the tree
      await trimBootstrap(target, archives);
      if (!opts.noCache) {
        await mkdir(dirname(bsTar), { recursive: true });
        const part = `${bsTar}.partial-${process.pid}`;
        await logged('cache the bootstrap', 'tar', ['-cpf', part, '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', target, '.']);
        await rename(part, bsTar);
      }
    });

    // 2. prepare the tree for the in-chroot phases
    await prepareTree(target, work, set, d);

    // 3. the phases
    const install = async (phase: Phase) => {
      const pk = set.packages.filter((p) => p.phase === phase);
      const subst = (n: string) => n.replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (_, v: string) => env[v] ?? '');
      const add = pk.filter((p) => !p.uninstall).map((p) => subst(p.name)).filter(Boolean);
      const del = pk.filter((p) => p.uninstall).map((p) => subst(p.name)).filter(Boolean);
      if (add.length) await inChroot(`package-installs (${phase}): apt-get install ${add.join(' ')}`, ['apt-get', 'install', '-y', '--no-install-recommends', ...add]);
      if (del.length) await inChroot(`package-installs (${phase}): apt-get purge ${del.join(' ')}`, ['apt-get', 'purge', '-y', '--auto-remove', ...del]);
    };
    for (const phase of PHASES) {
      const scripts = set.scripts[phase];
      const hasPk = PACKAGE_PHASES.has(phase) && set.packages.some((p) => p.phase === phase);
      if (phase === 'cleanup.d') await restoreTree(target);
      if (!scripts.length && !hasPk && phase !== 'pre-install.d') {
        em.emit({ type: 'step', id: `build.${phase}`, label: phase, state: 'skip' });
        continue;
      }
      await em.step(`build.${phase}`, `${phase} (${scripts.length} scripts)`, async () => {
        if (phase === 'pre-install.d') await inChroot('apt-get update', ['apt-get', 'update']);
        if (PACKAGE_PHASES.has(phase)) await install(phase);
        for (const s of scripts) {
          em.info(`${phase}/${s.name} (${s.element})`, 'build');
          const what = `element '${s.element}' script ${phase}/${s.name}`;
          if (IN_CHROOT.has(phase)) await inChroot(what, [`${IN_TARGET}/hooks/${phase}/${s.name}`]);
          else await onHost(what, [s.path]);
        }
      });
    }

    // 4. the package manifest
    const q = await run('dpkg-query', [`--admindir=${join(target, 'var/lib/dpkg')}`, '-W', '-f=${Package}\t${Version}\t${db:Status-Abbrev}\n'], { signal });
    const packages = q.stdout
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((f) => f.length >= 3 && f[2]!.startsWith('ii'))
      .map((f) => ({ name: f[0]!, version: f[1]! }));

    // 5. the disk
    const raw = await em.step('build.disk', 'assemble the disk (ext4 root, ESP, GRUB for BIOS and UEFI)', async () => {
      const du = await run('du', ['-s', '-x', '-B1', target], { signal });
      const treeBytes = Number(du.stdout.split('\t')[0]);
      const layout = planLayout(treeBytes, sizeBytes);
      log.line(`tree ${treeBytes} bytes; layout ${JSON.stringify(layout)}`);
      try {
        return await assembleDisk({ tree: target, work, layout, rootUuid: randomUUID(), run: { signal } });
      } catch (e) {
        if (e instanceof KumoError && /No space left/i.test(e.message)) throw buildDiskFull('disk assembly', log.path);
        throw e;
      }
    });
    await rm(target, { recursive: true, force: true });

    await em.step('build.output', `write ${format} ${output}`, async () => {
      await mkdir(dirname(output), { recursive: true });
      // claim the temp name exclusively: a file or symlink planted there (the builder runs as root)
      // makes this fail; it is never followed
      await (await open(tmpOut, 'wx', 0o644)).close();
      if (format === 'raw') await rename(raw, tmpOut).catch(async () => logged('copy the image', 'cp', ['--sparse=always', raw, tmpOut]));
      else await logged('convert to qcow2', 'qemu-img', ['convert', '-O', 'qcow2', ...(opts.compress ? ['-c'] : []), raw, tmpOut]);
      await rename(tmpOut, output);
    });
    const st = await stat(output);
    const sha256 = await hashFile(output);
    ok = true;
    const result: BuildResult = {
      path: output,
      format,
      distro: d.distro.name,
      release: d.release,
      elements: set.elements.map((e) => e.name),
      packages,
      sizeBytes: st.size,
      virtualSizeBytes: Math.max(sizeBytes, 0),
      sha256,
      buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
      builtAt: new Date().toISOString(),
      logFile: log.path,
      bootstrapCached,
    };
    log.line(`\n=== done in ${result.buildSeconds} s: ${output} (${st.size} bytes, sha256 ${sha256})`);
    return result;
  } catch (e) {
    const err = signal?.aborted && !(e instanceof InterruptedError) ? new InterruptedError('the image build was interrupted') : e;
    log.line(`\n=== FAILED: ${(err as Error).message}`);
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC' || (err as KumoError).code === 'DISK_FULL' && !isBuildDiskFull(err))
      throw buildDiskFull('writing files', log.path);
    if (log.failed?.code === 'ENOSPC' && !(err instanceof KumoError && err.kind === 'interrupted')) throw buildDiskFull('writing the build log', log.path);
    throw err;
  } finally {
    await safeRemoveTree(work).catch(() => {});
    if (!ok) await unlink(tmpOut).catch(() => {});
    await log.close();
  }
}

/** Move the bootstrap's .deb files to the package cache and empty apt's lists in the tree. */
async function trimBootstrap(target: string, archives: string): Promise<void> {
  const a = join(target, 'var/cache/apt/archives');
  for (const n of await readdir(a).catch(() => [] as string[])) {
    if (!n.endsWith('.deb')) continue;
    if (!existsSync(join(archives, n))) await rename(join(a, n), join(archives, n)).catch(() => copyFile(join(a, n), join(archives, n)));
    await rm(join(a, n), { force: true });
  }
  const l = join(target, 'var/lib/apt/lists');
  for (const n of await readdir(l).catch(() => [] as string[])) if (n !== 'partial' && n !== 'lock') await rm(join(l, n), { recursive: true, force: true });
}

/** Copy the merged hooks, environment and runner into the tree; keep daemons from starting; give it DNS. */
async function prepareTree(target: string, work: string, set: ElementSet, d: ResolvedDistro): Promise<void> {
  const inT = join(target, IN_TARGET.slice(1));
  await mkdir(join(inT, 'env'), { recursive: true });
  await mkdir(join(work, 'env'), { recursive: true });
  for (const [i, e] of set.environment.entries()) {
    const n = `${String(i).padStart(3, '0')}-${e.name}`;
    await copyFile(e.path, join(inT, 'env', n));
    await copyFile(e.path, join(work, 'env', n));
  }
  for (const phase of PHASES) {
    if (!IN_CHROOT.has(phase) || !set.scripts[phase].length) continue;
    await mkdir(join(inT, 'hooks', phase), { recursive: true });
    for (const s of set.scripts[phase]) {
      await copyFile(s.path, join(inT, 'hooks', phase, s.name));
      await chmod(join(inT, 'hooks', phase, s.name), 0o755);
    }
  }
  await copyFile(join(runnerDir(), 'run-script'), join(inT, 'run-script'));
  await chmod(join(inT, 'run-script'), 0o755);
  await writeFile(join(target, 'etc/apt/sources.list'), d.sourcesList);
  await writeFile(join(target, 'usr/sbin/policy-rc.d'), '#!/bin/sh\n# kumo image build: no daemons start in the chroot\nexit 101\n', { mode: 0o755 });
  // DNS for apt inside the chroot; the image's own resolv.conf is put back afterwards.
  const rc = join(target, 'etc/resolv.conf');
  const saved = join(target, 'etc/.resolv.conf.kumo-orig');
  if (await lstat(rc).then(() => true, () => false)) await rename(rc, saved);
  await copyFile('/etc/resolv.conf', rc).catch(() => writeFile(rc, ''));
}

/** Undo prepareTree: remove the hooks, policy-rc.d; restore resolv.conf unless a package replaced it. */
async function restoreTree(target: string): Promise<void> {
  await rm(join(target, IN_TARGET.slice(1)), { recursive: true, force: true });
  await rm(join(target, 'usr/sbin/policy-rc.d'), { force: true });
  const rc = join(target, 'etc/resolv.conf');
  const saved = join(target, 'etc/.resolv.conf.kumo-orig');
  const st = await lstat(rc).catch(() => undefined);
  const ours = st?.isFile() && (await readFile(rc, 'utf8').catch(() => '')) === (await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
  const savedSt = await lstat(saved).catch(() => undefined);
  if (savedSt) {
    if (ours || !st) {
      await rm(rc, { force: true });
      if (savedSt.isSymbolicLink()) {
        const to = await readlink(saved);
        await unlink(saved);
        await symlink(to, rc);
      } else await rename(saved, rc);
    } else await rm(saved, { force: true });
  } else if (ours) await writeFile(rc, '');
}

