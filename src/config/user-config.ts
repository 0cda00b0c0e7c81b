/**
 * The user's defaults: $XDG_CONFIG_HOME/kumo/config.yaml (~/.config/kumo/config.yaml), or the
 * file KUMO_CONFIG names. A YAML mapping of a few keys:
 *
 *   image: debian-12          the image of `kumo launch`/`create` without IMAGE, and of `kumo shell`
 *   cpus: 4
 *   memory: 2G
 *   disk: 20G
 *   driver: qemu
 *   ssh-key: ~/.ssh/id_ed25519
 *   default-instance: dev     the instance of `kumo shell` (and `ssh-config`) without NAME
 *
 * Precedence (most specific wins): command-line flags, then the --spec file, then this file, then
 * kumo's built-in defaults. Only the CLI reads this file; the library never does (its callers say
 * what they want).
 *
 * Load, then validate: every problem of the file at once, each with its key and a hint. `setKey`
 * validates one value and rewrites the file atomically, keeping its other keys and comments.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Document, isMap, isScalar, parseDocument, type Scalar, type YAMLMap } from 'yaml';
import { InvalidInputError, fsError, type ValidationIssue } from '../core/errors.js';
import { ensurePrivateDir, expandHome, writeFileAtomic } from '../core/fs.js';
import { nameIssues } from '../core/names.js';
import { closest } from '../core/text.js';
import { validateSpec } from './spec.js';

export interface UserConfig {
  image?: string;
  cpus?: number;
  /** As given (2G, 1536M, 2048). */
  memory?: string;
  /** As given (20G). */
  disk?: string;
  driver?: string;
  /** An absolute path. */
  'ssh-key'?: string;
  'default-instance'?: string;
}

export type UserConfigKey = keyof UserConfig;

/** The keys, in the order `kumo config list` shows them, with what each means. */
export const USER_CONFIG_KEYS: readonly { key: UserConfigKey; description: string; example: string }[] = [
  { key: 'image', description: 'image of launch/create without IMAGE, and of the default instance of kumo shell', example: 'debian-12' },
  { key: 'cpus', description: 'virtual CPUs of new instances', example: '4' },
  { key: 'memory', description: 'memory of new instances', example: '2G' },
  { key: 'disk', description: 'disk size of new instances (at least the image size)', example: '20G' },
  { key: 'driver', description: 'backend of new instances', example: 'qemu' },
  { key: 'ssh-key', description: 'private ssh key for new instances (FILE.pub beside it)', example: '~/.ssh/id_ed25519' },
  { key: 'default-instance', description: 'instance of kumo shell and kumo ssh-config without NAME', example: 'default' },
];

/** The default instance's name when the file names none. */
export const DEFAULT_INSTANCE = 'default';

const KEY_NAMES = USER_CONFIG_KEYS.map((k) => k.key) as readonly string[];

/** The spec field each key fills (the keys that are spec defaults). */
export const SPEC_FIELD_OF: Readonly<Partial<Record<UserConfigKey, string>>> = { image: 'image', cpus: 'cpus', memory: 'memory', disk: 'disk', driver: 'driver', 'ssh-key': 'sshKey' };

/** Where the file is: KUMO_CONFIG, else $XDG_CONFIG_HOME/kumo/config.yaml, else ~/.config/kumo/config.yaml. */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUMO_CONFIG) return resolve(env.KUMO_CONFIG);
  const xdg = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(env.HOME || homedir(), '.config');
  return join(xdg, 'kumo', 'config.yaml');
}

export class UserConfigError extends InvalidInputError {
  constructor(code: 'CONFIG_PARSE' | 'CONFIG_UNKNOWN_KEY' | 'CONFIG_BAD_VALUE', message: string, hint: string, issues: ValidationIssue[] = []) {
    super(code, message, { hint, details: { issues } });
  }
}

export interface ValidateUserConfigOptions {
  /** Driver names accepted for `driver` (the registered drivers); without it any well-formed name is. */
  drivers?: readonly string[];
  /** Where a relative ssh-key is resolved from (the file's folder, or the cwd of `kumo config set`). */
  base?: string;
  env?: NodeJS.ProcessEnv;
}

/** The problems of one key's value (none when it is good), and the value as kept. */
function checkValue(key: UserConfigKey, value: unknown, o: ValidateUserConfigOptions): { issues: ValidationIssue[]; value?: string | number } {
  const bad = (message: string, hint: string) => ({ issues: [{ path: key, message, hint }] });
  const spec = (field: string) => {
    try {
      validateSpec({ [field]: value }, { requireName: false });
      return undefined;
    } catch (e) {
      const issues = ((e as InvalidInputError).details?.issues as ValidationIssue[] | undefined) ?? [{ path: field, message: (e as Error).message }];
      return { issues: issues.map((i) => ({ ...i, path: key })) };
    }
  };
  switch (key) {
    case 'image':
      if (typeof value !== 'string' || !value.trim()) return bad('must be a non-empty string', 'an image alias (debian-12), id, URL or file');
      return { issues: [], value: value.trim() };
    case 'cpus': {
      const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
      return spec('cpus') ?? { issues: [], value: n as number };
    }
    case 'memory':
    case 'disk':
      if (typeof value !== 'string' && typeof value !== 'number') return bad(`must be a size (got ${JSON.stringify(value)})`, key === 'memory' ? 'e.g. 2G or 2048 (MiB)' : 'e.g. 20G');
      return spec(key) ?? { issues: [], value: String(value) };
    case 'driver':
      if (typeof value !== 'string' || !/^[a-z][a-z0-9-]*$/.test(value)) return bad(`must be a driver name (got ${JSON.stringify(value)})`, o.drivers ? `one of ${o.drivers.join(', ')}` : 'e.g. qemu or libvirt');
      if (o.drivers && !o.drivers.includes(value)) {
        const near = closest(value, o.drivers);
        return bad(`'${value}' is not a driver${near.length ? `; did you mean '${near[0]}'?` : ''}`, `one of ${o.drivers.join(', ')}`);
      }
      return { issues: [], value };
    case 'ssh-key': {
      if (typeof value !== 'string' || !value) return bad('must be the path of a private key', 'e.g. ~/.ssh/id_ed25519 (with id_ed25519.pub beside it)');
      const home = (o.env ?? process.env).HOME || homedir();
      const p = resolve(o.base ?? process.cwd(), expandHome(value, home));
      if (!existsSync(p)) return bad(`${p} does not exist`, 'give the path of your private key (its .pub beside it), or unset the key to use kumo\u2019s own');
      return { issues: [], value: p };
    }
    case 'default-instance': {
      const issues = nameIssues(value, key);
      return issues.length ? { issues } : { issues: [], value: value as string };
    }
  }
}

function unknownKeyIssue(key: string): ValidationIssue {
  const near = closest(key, [...KEY_NAMES]);
  return { path: key, message: `is not a known key${near.length ? `; did you mean '${near[0]}'?` : ''}`, hint: `known keys: ${KEY_NAMES.join(', ')}` };
}

/** Check a parsed config (every problem at once); returns the config as kept (sizes as given, paths absolute). */
export function validateUserConfig(doc: unknown, where: string, o: ValidateUserConfigOptions = {}): UserConfig {
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UserConfigError('CONFIG_PARSE', `${where} must hold a mapping of keys (image, cpus, ...)`, `known keys: ${KEY_NAMES.join(', ')}`);
  const out: Record<string, unknown> = {};
  const unknown: ValidationIssue[] = [];
  const bad: ValidationIssue[] = [];
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!KEY_NAMES.includes(k)) {
      unknown.push(unknownKeyIssue(k));
      continue;
    }
    if (v === null || v === undefined) continue;
    const r = checkValue(k as UserConfigKey, v, o);
    if (r.issues.length) bad.push(...r.issues);
    else out[k] = r.value;
  }
  const issues = [...unknown, ...bad];
  if (issues.length) {
    const list = issues.map((i) => `  ${i.path}: ${i.message}${i.hint ? ` (${i.hint})` : ''}`).join('\n');
    throw new UserConfigError(bad.length ? 'CONFIG_BAD_VALUE' : 'CONFIG_UNKNOWN_KEY', `${where}: ${issues.length} problem${issues.length > 1 ? 's' : ''}\n${list}`, `fix ${where}, or set the keys with 'kumo config set KEY VALUE'`, issues);
  }
  return out as UserConfig;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, path, 'read the kumo config');
  }
}

function parse(text: string, path: string) {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new UserConfigError('CONFIG_PARSE', `${path} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, 'fix its syntax, or remove it (kumo then uses its built-in defaults)');
  return doc;
}

/** Read and check the user config; a missing file is an empty config. */
export async function loadUserConfig(o: ValidateUserConfigOptions & { path?: string } = {}): Promise<UserConfig> {
  const path = o.path ?? userConfigPath(o.env);
  const text = await readText(path);
  if (text === undefined) return {};
  return validateUserConfig(parse(text, path).toJS(), path, { base: dirname(path), ...o });
}

/** Check that `key` is a known key (CONFIG_UNKNOWN_KEY naming the keys otherwise). */
export function configKey(key: string): UserConfigKey {
  if (!KEY_NAMES.includes(key)) {
    const i = unknownKeyIssue(key);
    throw new UserConfigError('CONFIG_UNKNOWN_KEY', `'${key}' ${i.message}`, i.hint!, [i]);
  }
  return key as UserConfigKey;
}

/** Set one key (checked first; the file keeps its other keys and comments), written atomically. Returns the value as kept. */
export async function setUserConfigKey(key: string, value: string, o: ValidateUserConfigOptions & { path?: string } = {}): Promise<string | number> {
  const r = checkValue(configKey(key), value, o);
  if (r.issues.length) {
    const i = r.issues[0]!;
    throw new UserConfigError('CONFIG_BAD_VALUE', `${key}: ${i.message}`, i.hint ?? `see 'kumo config list' for the keys and examples`, r.issues);
  }
  const path = o.path ?? userConfigPath(o.env);
  await edit(path, (doc) => doc.set(key, r.value), o);
  return r.value!;
}

/** Remove one key from the file (a no-op when it is not set). */
export async function unsetUserConfigKey(key: string, o: ValidateUserConfigOptions & { path?: string } = {}): Promise<boolean> {
  configKey(key);
  const path = o.path ?? userConfigPath(o.env);
  let had = false;
  await edit(
    path,
    (doc) => {
      // a comment above the key goes on to what follows it (the file's header comment sits there)
      const items = (doc.contents as YAMLMap).items;
      const i = items.findIndex((p) => isScalar(p.key) && p.key.value === key);
      const above = i >= 0 && isScalar(items[i]!.key) ? (items[i]!.key as Scalar).commentBefore : undefined;
      const next = items[i + 1]?.key;
      if (above && isScalar(next)) next.commentBefore = next.commentBefore ? `${above}\n${next.commentBefore}` : above;
      else if (above) doc.commentBefore = doc.commentBefore ? `${doc.commentBefore}\n${above}` : above;
      had = doc.delete(key);
    },
    o,
  );
  return had;
}

async function edit(path: string, change: (doc: ReturnType<typeof parseDocument>) => unknown, o: ValidateUserConfigOptions): Promise<void> {
  const text = (await readText(path)) ?? '';
  let doc = parse(text, path);
  if (doc.contents === null) doc = new Document({}) as typeof doc;
  if (!isMap(doc.contents)) throw new UserConfigError('CONFIG_PARSE', `${path} must hold a mapping of keys (image, cpus, ...)`, 'fix it, or remove it');
  change(doc);
  // the whole file must still be good (a key set here never makes the other keys unreadable)
  validateUserConfig(doc.toJS(), path, { base: dirname(path), ...o });
  await ensurePrivateDir(dirname(path));
  await writeFileAtomic(path, doc.toString(), 0o600);
}

/** The spec input defaults the config gives (spec field -> value), under a --spec file and the flags. */
export function specDefaults(c: UserConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(SPEC_FIELD_OF)) {
    const v = c[key as UserConfigKey];
    if (v !== undefined) o[field] = v;
  }
  return o;
}
