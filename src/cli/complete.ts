/**
 * Shell completion from the command tables and the live store: `kumo __complete WORD...` gets the
 * words after `kumo` up to the one being completed (the last, possibly empty) and prints one
 * candidate a line, then a directive line: `:files` (the shell adds file names) or `:`.
 *
 * The walk follows run.ts's dispatch: global options anywhere, the command word (or an alias),
 * subcommand words, then the leaf's own options and arguments. Each command offers its own
 * options only (plus the global ones), never another command's; an option's value offers its
 * choices, files, or names from the store; an argument offers instance, image or network names.
 */
import { GLOBAL_OPTIONS, type ArgSpec, type CommandDef, type CompleteKind, type OptionSpec } from './command.js';

/** Where live names come from (the store at completion time; fixed lists in unit tests). */
export interface CompletionSource {
  instances(): Promise<string[]>;
  images(): Promise<string[]>;
  networks(): Promise<string[]>;
}

export interface Completion {
  candidates: string[];
  /** The shell should add file names too. */
  files: boolean;
}

/** An argument's kind when its spec does not say. */
export function argKind(a: ArgSpec): CompleteKind {
  if (a.complete) return a.complete;
  if (['name', 'names', 'src', 'instance'].includes(a.name)) return 'instance';
  if (['image', 'ref', 'refs'].includes(a.name)) return 'image';
  if (a.name === 'file') return 'file';
  return 'none';
}

/** An option value's kind when its spec does not say. */
export function optionKind(o: OptionSpec): CompleteKind {
  if (o.complete) return o.complete;
  if (o.placeholder === 'FILE') return 'file';
  if (o.placeholder === 'DIR') return 'dir';
  return 'none';
}

function optionWords(specs: Record<string, OptionSpec>): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(specs)) {
    out.push(`--${name}`);
    if (o.type === 'boolean' && o.default === true) out.push(`--no-${name}`);
  }
  return out;
}

/** The option a word names in `specs` (`--name`, `--name=v`, `-x`), with whether its value is inline. */
function optionOf(word: string, specs: Record<string, OptionSpec>): { spec: OptionSpec; inline: boolean } | undefined {
  if (word.startsWith('--')) {
    const eq = word.indexOf('=');
    const name = word.slice(2, eq >= 0 ? eq : undefined);
    const spec = specs[name] ?? (name.startsWith('no-') ? specs[name.slice(3)] : undefined);
    return spec ? { spec, inline: eq >= 0 } : undefined;
  }
  if (/^-[^-]/.test(word)) {
    // -abc: the last short letter may take the next word as its value
    const last = word[word.length - 1]!;
    const found = Object.values(specs).find((s) => s.short === last);
    return found ? { spec: found, inline: word.length > 2 && Object.values(specs).find((s) => s.short === word[1])?.type === 'string' } : undefined;
  }
  return undefined;
}

async function valuesOf(kind: CompleteKind, src: CompletionSource, defs: readonly CommandDef[], aliases: Readonly<Record<string, string>>): Promise<Completion> {
  switch (kind) {
    case 'instance':
      return { candidates: await src.instances(), files: false };
    case 'image':
      // an image is also a local file or a URL
      return { candidates: await src.images(), files: true };
    case 'network':
      return { candidates: await src.networks(), files: false };
    case 'file':
    case 'dir':
      return { candidates: [], files: true };
    case 'command':
      return { candidates: [...defs.map((d) => d.name), ...Object.keys(aliases)], files: false };
    case 'none':
      return { candidates: [], files: false };
  }
}

/** The completion of the last of `words` (the words after `kumo`). */
export async function complete(defs: readonly CommandDef[], aliases: Readonly<Record<string, string>>, words: readonly string[], src: CompletionSource): Promise<Completion> {
  const cur = words.length ? words[words.length - 1]! : '';
  const done = words.slice(0, -1);
  let def: CommandDef | undefined;
  let i = 0;
  let specs: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  let pendingValue: OptionSpec | undefined;
  // the command words (global options may stand between them)
  for (; i < done.length; i++) {
    const w = done[i]!;
    if (pendingValue) {
      pendingValue = undefined;
      continue;
    }
    if (w.startsWith('-')) {
      const o = optionOf(w, specs);
      if (o && o.spec.type === 'string' && !o.inline) pendingValue = o.spec;
      continue;
    }
    const next: CommandDef | undefined = def ? def.subcommands?.find((s) => s.name === w) : defs.find((d) => d.name === (aliases[w] ?? w));
    if (!next) return { candidates: [], files: false }; // an unknown word: nothing sensible to offer
    def = next;
    specs = { ...GLOBAL_OPTIONS, ...(def.options ?? {}) };
    if (!def.subcommands?.length) {
      i++;
      break;
    }
  }
  // the leaf's own words: options, their values, positionals
  let positional = 0;
  let rest = false;
  for (; i < done.length && def && !def.subcommands?.length; i++) {
    const w = done[i]!;
    if (pendingValue) {
      pendingValue = undefined;
      continue;
    }
    if (rest) continue;
    if (w === '--') {
      rest = true;
      continue;
    }
    if (w.startsWith('-') && w.length > 1) {
      const o = optionOf(w, specs);
      if (o && o.spec.type === 'string' && !o.inline) pendingValue = o.spec;
      continue;
    }
    positional++;
    const args = def.args ?? [];
    if (def.acceptsRest && !args.some((a) => a.variadic) && positional >= args.length) rest = true;
  }
  if (pendingValue) {
    if (pendingValue.choices) return { candidates: [...pendingValue.choices], files: false };
    return valuesOf(optionKind(pendingValue), src, defs, aliases);
  }
  if (!def) {
    if (cur.startsWith('-')) return { candidates: [...optionWords(GLOBAL_OPTIONS), '--version'], files: false };
    return valuesOf('command', src, defs, aliases);
  }
  if (def.subcommands?.length) {
    if (cur.startsWith('-')) return { candidates: optionWords(specs), files: false };
    return { candidates: def.subcommands.map((s) => s.name), files: false };
  }
  // `--opt=` values completed inline
  if (cur.startsWith('--') && cur.includes('=')) {
    const o = optionOf(cur, specs);
    const prefix = cur.slice(0, cur.indexOf('=') + 1);
    if (!o || o.spec.type !== 'string') return { candidates: [], files: false };
    const v = o.spec.choices ? { candidates: [...o.spec.choices], files: false } : await valuesOf(optionKind(o.spec), src, defs, aliases);
    return { candidates: v.candidates.map((c) => prefix + c), files: v.files };
  }
  if (rest) return { candidates: [], files: true }; // the guest command: nothing kumo knows
  if (cur.startsWith('-')) return { candidates: optionWords(specs), files: false };
  if (def.name === 'help' && !def.subcommands) return helpWords(defs, aliases, done.slice(done.indexOf('help') + 1));
  const args = def.args ?? [];
  const a = args[Math.min(positional, args.length - 1)];
  if (!a || (positional >= args.length && !a.variadic)) return { candidates: [], files: false };
  return valuesOf(argKind(a), src, defs, aliases);
}

/** `kumo help WORD...`: command names, then the subcommands of the command named. */
function helpWords(defs: readonly CommandDef[], aliases: Readonly<Record<string, string>>, words: readonly string[]): Completion {
  let list: readonly CommandDef[] = defs;
  for (const w of words) {
    const d = list.find((x) => x.name === (aliases[w] ?? w));
    if (!d?.subcommands?.length) return { candidates: [], files: false };
    list = d.subcommands;
  }
  return { candidates: [...list.map((d) => d.name), ...(words.length ? [] : Object.keys(aliases))], files: false };
}

/** What `kumo __complete` prints: the candidates that start with the current word, one a line, then the directive. */
export function renderCompletion(c: Completion, cur: string): string {
  const seen = new Set<string>();
  const lines = c.candidates.filter((x) => x.startsWith(cur) && !/[\n\r]/.test(x) && !seen.has(x) && (seen.add(x), true));
  return [...lines, c.files ? ':files' : ':'].join('\n') + '\n';
}
