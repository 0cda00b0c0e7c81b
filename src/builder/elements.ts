/**
 * Elements, as diskimage-builder defines them: a directory named after the element holding
 * phase folders of executable scripts, `element-deps` (one element name a line), an optional
 * `package-installs.yaml` and `environment.d/` files that are sourced before every script.
 *
 * Elements are looked up in the user's --elements-path folders first, then in the built-in
 * elements shipped with kumo (the repository's `elements/` folder).
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { closest } from '../core/text.js';
import { InvalidInputError, NotFoundError } from '../core/errors.js';

export const PHASES = [
  'root.d',
  'extra-data.d',
  'pre-install.d',
  'install.d',
  'post-install.d',
  'block-device.d',
  'finalise.d',
  'cleanup.d',
] as const;
export type Phase = (typeof PHASES)[number];

/** Phases whose scripts run inside the chroot; the others run on the host with $TARGET_ROOT. */
export const IN_CHROOT: ReadonlySet<Phase> = new Set<Phase>(['pre-install.d', 'install.d', 'post-install.d', 'finalise.d']);

/** Phases in which package-installs.yaml entries may be installed or removed. */
export const PACKAGE_PHASES: ReadonlySet<Phase> = new Set<Phase>(['pre-install.d', 'install.d', 'post-install.d']);

const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const SCRIPT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The built-in elements shipped with kumo. */
export function builtinElementsDir(): string {
  return fileURLToPath(new URL('../../../elements', import.meta.url));
}

export interface Element {
  name: string;
  dir: string;
  deps: string[];
}

export interface PackageInstall {
  name: string;
  phase: Phase;
  uninstall: boolean;
  element: string;
}

export interface PhaseScript {
  phase: Phase;
  name: string;
  path: string;
  element: string;
}

export interface ElementSet {
  /** Requested elements followed by their dependencies, each once, in a stable order. */
  elements: Element[];
  scripts: Record<Phase, PhaseScript[]>;
  packages: PackageInstall[];
  /** environment.d files in the order they are sourced (by file name across elements). */
  environment: { name: string; path: string; element: string }[];
}

/** Every element name available in the search path, mapped to its folder (first one wins). */
export function listElements(searchPath: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const base of searchPath) {
    let names: string[];
    try {
      names = readdirSync(base).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (n.startsWith('.') || !NAME_RE.test(n) || found.has(n)) continue;
      const d = join(base, n);
      try {
        if (statSync(d).isDirectory()) found.set(n, d);
      } catch {
        /* vanished */
      }
    }
  }
  return found;
}

export function elementSearchPath(extra: readonly string[] = []): string[] {
  return [...extra.map((p) => resolve(p)), builtinElementsDir()];
}

function readDeps(dir: string, name: string): string[] {
  const f = join(dir, 'element-deps');
  if (!existsSync(f)) return [];
  const deps: string[] = [];
  for (const [i, raw] of readFileSync(f, 'utf8').split('\n').entries()) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    if (!NAME_RE.test(line))
      throw new InvalidInputError('BAD_ELEMENT', `element '${name}': element-deps line ${i + 1}: '${line}' is not an element name`, {
        hint: `fix ${f}`,
      });
    deps.push(line);
  }
  return deps;
}

/**
 * Resolve the requested elements and all their dependencies. Unknown names get suggestions;
 * a cycle in element-deps is named in full (a -> b -> a).
 */
export function resolveElements(requested: readonly string[], searchPath: readonly string[]): Element[] {
  const available = listElements(searchPath);
  const out: Element[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cyc = [...chain.slice(chain.indexOf(name)), name];
      throw new InvalidInputError('ELEMENT_CYCLE', `element-deps form a cycle: ${cyc.join(' -> ')}`, {
        hint: `remove one of these dependencies from the element-deps files`,
        details: { cycle: cyc },
      });
    }
    const dir = available.get(name);
    if (!dir) {
      const sugg = closest(name, [...available.keys()]);
      const via = chain.length ? ` (required by '${chain[chain.length - 1]}')` : '';
      throw new NotFoundError('UNKNOWN_ELEMENT', `unknown element '${name}'${via}${sugg.length ? `; did you mean '${sugg.slice(0, 3).join("', '")}'?` : ''}`, {
        hint: `elements are looked up in: ${searchPath.join(', ')}; add a folder with --elements-path`,
        details: { element: name, suggestions: sugg },
      });
    }
    state.set(name, 'visiting');
    const deps = readDeps(dir, name);
    for (const d of deps) visit(d, [...chain, name]);
    state.set(name, 'done');
    out.push({ name, dir, deps });
  };
  for (const r of requested) visit(r, []);
  return out;
}

function parsePackageInstalls(el: Element): PackageInstall[] {
  const f = join(el.dir, 'package-installs.yaml');
  if (!existsSync(f)) return [];
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new InvalidInputError('BAD_ELEMENT', `element '${el.name}': ${f} is not valid YAML: ${(e as Error).message}`, { hint: 'fix the file' });
  }
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new InvalidInputError('BAD_ELEMENT', `element '${el.name}': package-installs.yaml must be a mapping of package names`, { hint: `fix ${f}` });
  const out: PackageInstall[] = [];
  for (const [name, v] of Object.entries(doc as Record<string, unknown>)) {
    let phase: Phase = 'install.d';
    let uninstall = false;
    if (v !== null && v !== undefined) {
      if (typeof v !== 'object' || Array.isArray(v))
        throw new InvalidInputError('BAD_ELEMENT', `element '${el.name}': package-installs.yaml: '${name}' must map to nothing or to {phase, uninstall}`, { hint: `fix ${f}` });
      const o = v as Record<string, unknown>;
      if (o.phase !== undefined) {
        if (typeof o.phase !== 'string' || !PACKAGE_PHASES.has(o.phase as Phase))
          throw new InvalidInputError('BAD_ELEMENT', `element '${el.name}': package-installs.yaml: '${name}': phase must be one of ${[...PACKAGE_PHASES].join(', ')}`, { hint: `fix ${f}` });
        phase = o.phase as Phase;
      }
      uninstall = o.uninstall === true;
    }
    out.push({ name, phase, uninstall, element: el.name });
  }
  return out;
}

function isExecutableFile(p: string): boolean {
  try {
    const st = statSync(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Load everything the build needs from the resolved elements. */
export function loadElementSet(requested: readonly string[], searchPath: readonly string[]): ElementSet {
  const elements = resolveElements(requested, searchPath);
  const scripts = Object.fromEntries(PHASES.map((p) => [p, [] as PhaseScript[]])) as Record<Phase, PhaseScript[]>;
  const environment: ElementSet['environment'] = [];
  const packages: PackageInstall[] = [];
  for (const el of elements) {
    for (const phase of PHASES) {
      const d = join(el.dir, phase);
      if (!existsSync(d)) continue;
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        if (n.startsWith('.') || !isExecutableFile(p)) continue;
        if (!SCRIPT_RE.test(n))
          throw new InvalidInputError('BAD_ELEMENT', `element '${el.name}': script name '${phase}/${n}' has unsupported characters`, { hint: 'use letters, digits, dot, dash and underscore' });
        const clash = scripts[phase].find((s) => s.name === n);
        if (clash)
          throw new InvalidInputError('ELEMENT_CONFLICT', `elements '${clash.element}' and '${el.name}' both provide ${phase}/${n}`, { hint: 'rename one of the scripts' });
        scripts[phase].push({ phase, name: n, path: p, element: el.name });
      }
    }
    const envDir = join(el.dir, 'environment.d');
    if (existsSync(envDir))
      for (const n of readdirSync(envDir)) {
        const p = join(envDir, n);
        if (n.startsWith('.') || !statSync(p).isFile()) continue;
        if (!SCRIPT_RE.test(n)) throw new InvalidInputError('BAD_ELEMENT', `element '${el.name}': environment.d/${n} has an unsupported name`, { hint: 'use letters, digits, dot, dash and underscore' });
        environment.push({ name: n, path: p, element: el.name });
      }
    packages.push(...parsePackageInstalls(el));
  }
  for (const phase of PHASES) scripts[phase].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  environment.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.element < b.element ? -1 : 1));
  return { elements, scripts, packages, environment };
}

/** Every file of the elements, for the recipe hash: [relative path, mode, content]. */
export function elementFiles(elements: readonly Element[]): { element: string; rel: string; mode: number; data: Buffer }[] {
  const out: { element: string; rel: string; mode: number; data: Buffer }[] = [];
  const walk = (el: Element, dir: string, rel: string) => {
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const st = statSync(p);
      const r = rel ? `${rel}/${n}` : n;
      if (st.isDirectory()) walk(el, p, r);
      else if (st.isFile()) out.push({ element: el.name, rel: r, mode: st.mode & 0o777, data: readFileSync(p) });
    }
  };
  for (const el of elements) walk(el, el.dir, '');
  return out;
}
