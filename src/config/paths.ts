/**
 * Where kumo keeps its data. KUMO_HOME is, in order: the `home` option (CLI --home), the KUMO_HOME
 * environment variable, $XDG_DATA_HOME/kumo, ~/.local/share/kumo. Every folder is mode 0700.
 *
 *   KUMO_HOME/
 *     images/       the verified image store (content-addressed data + one metadata file each)
 *     instances/    one folder per instance: the instance directory is the truth
 *     keys/         kumo's default ssh key pair
 *     cache/        downloads in progress, build caches, probe results
 *     tmp/          scratch space on the same file system (for atomic renames)
 *     templates/    warm templates: a ready guest's frozen disk, RAM file and device state
 *     catalog.yaml  (optional) the user's own image sources and aliases
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { access, constants } from 'node:fs/promises';
import { ensurePrivateDir } from '../core/fs.js';
import { EnvironmentError, KumoError } from '../core/errors.js';

export interface KumoPaths {
  home: string;
  images: string;
  instances: string;
  keys: string;
  cache: string;
  tmp: string;
  catalog: string;
  /** Warm templates: booted machines frozen to restore clones from (src/template/). */
  templates: string;
}

export interface HomeOptions {
  /** Explicit home (the CLI's --home); wins over the environment. */
  home?: string;
  env?: NodeJS.ProcessEnv;
}

export function resolveHome(opts: HomeOptions = {}): string {
  const env = opts.env ?? process.env;
  if (opts.home) return resolve(opts.home);
  if (env.KUMO_HOME) return resolve(env.KUMO_HOME);
  const xdg = env.XDG_DATA_HOME && env.XDG_DATA_HOME.startsWith('/') ? env.XDG_DATA_HOME : join(env.HOME || homedir(), '.local', 'share');
  return join(xdg, 'kumo');
}

export function pathsFor(home: string): KumoPaths {
  return {
    home,
    images: join(home, 'images'),
    instances: join(home, 'instances'),
    keys: join(home, 'keys'),
    cache: join(home, 'cache'),
    tmp: join(home, 'tmp'),
    catalog: join(home, 'catalog.yaml'),
    templates: join(home, 'templates'),
  };
}

/** Resolve KUMO_HOME without touching the disk. */
export function kumoPaths(opts: HomeOptions = {}): KumoPaths {
  return pathsFor(resolveHome(opts));
}

/** Resolve KUMO_HOME and make sure it and its folders exist (mode 0700) and are writable. */
export async function ensureHome(opts: HomeOptions = {}): Promise<KumoPaths> {
  const p = kumoPaths(opts);
  try {
    for (const d of [p.home, p.images, p.instances, p.keys, p.cache, p.tmp]) await ensurePrivateDir(d);
    await access(p.home, constants.W_OK);
  } catch (e) {
    const code = (e as KumoError).code ?? (e as NodeJS.ErrnoException).code;
    throw new EnvironmentError('HOME_NOT_WRITABLE', `KUMO_HOME ${p.home} is not writable${code ? ` (${code})` : ''}`, {
      hint: 'choose a writable folder with --home DIR or KUMO_HOME=DIR, or fix its permissions',
      cause: e,
    });
  }
  return p;
}
