/**
 * The shape of a CLI command and the argument parser. Each top-level command is one file in
 * src/cli/commands/<name>.ts whose default export is a CommandDef; main.ts loads only the file
 * of the command being run, so start-up stays fast. A command with subcommands (image, disk,
 * seed, port, snapshot) lists them in `subcommands`.
 *
 * Commands parse, call the library and render. They do no work of their own. Their usage line
 * is generated from their tables (`usageLine`), never written by hand.
 */
import { UsageError } from '../core/errors.js';
import { closest } from '../core/text.js';

export { closest, editDistance } from '../core/text.js';
import type { Output } from './output.js';
import type { KumoPaths } from '../config/paths.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given several times; the value is then an array. */
  multiple?: boolean;
  description: string;
  /** Shown in help for string options, e.g. FILE, N, HOST:GUEST. */
  placeholder?: string;
  /** Values offered by shell completion. */
  choices?: readonly string[];
  /** What shell completion offers for the value (default: from the placeholder: FILE -> files, DIR -> folders). */
  complete?: CompleteKind;
  /** The command cannot run without it (checked by the parser, shown without brackets in usage). */
  required?: boolean;
  /** Value of a boolean option that is not given; `true` shows it as --no-NAME in usage. */
  default?: boolean;
}

export interface ArgSpec {
  name: string;
  required?: boolean;
  /** Takes all remaining positionals. */
  variadic?: boolean;
  description?: string;
  /** Shown in usage instead of NAME (e.g. `[ADDR:]HOST:GUEST[/udp]`). */
  placeholder?: string;
  /** What shell completion offers (default from the name: name(s)/src -> instances, image/ref(s) -> images, file -> files). */
  complete?: CompleteKind;
}

/** What shell completion offers for an argument or an option's value (src/cli/complete.ts). */
export type CompleteKind = 'instance' | 'image' | 'network' | 'file' | 'dir' | 'command' | 'none';

/** The words after a command's arguments that are passed on as they are (ssh, exec: the guest command). */
export interface RestSpec {
  /** Shown in usage, e.g. `CMD [ARGS...]`. */
  placeholder: string;
  required?: boolean;
}

export interface CommandDef {
  name: string;
  summary: string;
  description?: string;
  examples?: string[];
  options?: Record<string, OptionSpec>;
  args?: ArgSpec[];
  /**
   * Everything after the last argument goes to `rest` untouched, options included (a leading
   * `--` is dropped): `kumo exec web uname -a`. The command's own options go before its arguments.
   */
  acceptsRest?: boolean | RestSpec;
  subcommands?: CommandDef[];
  /** Returns the exit code (default 0). */
  run?: (ctx: CommandContext, args: ParsedArgs) => Promise<number | void>;
}

export interface ParsedArgs {
  options: Record<string, string | boolean | string[] | undefined>;
  positionals: Record<string, string | string[] | undefined>;
  rest: string[];
}

export interface GlobalFlags {
  home?: string;
  json: boolean;
  debug: boolean;
  color: boolean;
}

export interface CommandContext {
  globals: GlobalFlags;
  out: Output;
  /** KUMO_HOME, created (0700) and checked writable on first call. */
  paths(): Promise<KumoPaths>;
  /** Aborted on Ctrl-C / SIGTERM; pass to long library calls. */
  signal: AbortSignal;
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  home: { type: 'string', description: 'kumo data folder (default: $KUMO_HOME or ~/.local/share/kumo)', placeholder: 'DIR' },
  json: { type: 'boolean', description: 'machine-readable output: one JSON document, or JSON lines for streams' },
  debug: { type: 'boolean', description: 'show stack traces and every command kumo runs' },
  'no-color': { type: 'boolean', description: 'no colours (also: NO_COLOR=1)' },
  help: { type: 'boolean', short: 'h', description: 'show help for this command' },
};

/** A global option's name when `arg` is one (`--json`, `--home=DIR`, `-h`), and whether it takes the next word as its value. */
export function globalOption(arg: string): { name: string; spec: OptionSpec; inline?: string } | undefined {
  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = GLOBAL_OPTIONS[name];
    if (!spec) return undefined;
    return eq >= 0 ? { name, spec, inline: arg.slice(eq + 1) } : { name, spec };
  }
  if (/^-[^-]$/.test(arg)) {
    const found = Object.entries(GLOBAL_OPTIONS).find(([, s]) => s.short === arg[1]);
    if (found) return { name: found[0], spec: found[1] };
  }
  return undefined;
}

/**
 * Parse argv for one command. Accepts `--opt value`, `--opt=value`, `-x value`, `--no-FLAG`
 * for booleans, and `--` (everything after it goes to `rest`, or is an error when the command
 * takes none). Global options are accepted anywhere. For a command that `acceptsRest`, every
 * word after its last argument goes to `rest` as it is.
 */
export function parseArgs(def: CommandDef, argv: readonly string[], commandPath: string): ParsedArgs {
  const specs: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, ...(def.options ?? {}) };
  const shorts = new Map<string, string>();
  for (const [name, s] of Object.entries(specs)) if (s.short) shorts.set(s.short, name);
  const options: ParsedArgs['options'] = {};
  const pos: string[] = [];
  let rest: string[] = [];
  const helpRef = `see 'kumo help ${commandPath}'`;
  const argSpecs = def.args ?? [];
  // With a rest, the command's arguments end after this many positionals (a variadic one never ends).
  const restAfter = def.acceptsRest && !argSpecs.some((s) => s.variadic) ? argSpecs.length : undefined;

  const set = (name: string, spec: OptionSpec, value: string | boolean) => {
    if (spec.multiple) {
      const cur = (options[name] as string[] | undefined) ?? [];
      cur.push(String(value));
      options[name] = cur;
    } else {
      options[name] = value;
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (restAfter !== undefined && pos.length === restAfter && restAfter > 0) {
      rest = argv.slice(a === '--' ? i + 1 : i);
      break;
    }
    if (a === '--') {
      rest = argv.slice(i + 1);
      if (!def.acceptsRest && rest.length) pos.push(...rest), (rest = []);
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      let name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      let inline: string | undefined = eq >= 0 ? a.slice(eq + 1) : undefined;
      let spec = specs[name];
      let negated = false;
      if (!spec && name.startsWith('no-') && specs[name.slice(3)]?.type === 'boolean') {
        name = name.slice(3);
        spec = specs[name];
        negated = true;
      }
      if (!spec) {
        const sugg = closest(name, Object.keys(specs));
        throw new UsageError(`unknown option --${name} for 'kumo ${commandPath}'${sugg.length ? ` (did you mean --${sugg[0]}?)` : ''}`, { hint: helpRef });
      }
      if (spec.type === 'boolean') {
        if (inline !== undefined) {
          if (!['true', 'false', '1', '0', 'yes', 'no'].includes(inline))
            throw new UsageError(`option --${name} takes no value (got '${inline}')`, { hint: helpRef });
          set(name, spec, ['true', '1', 'yes'].includes(inline) !== negated);
        } else set(name, spec, !negated);
        continue;
      }
      if (negated) throw new UsageError(`option --${name} takes a value; --no-${name} is not valid`, { hint: helpRef });
      if (inline === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value${spec.placeholder ? ` (${spec.placeholder})` : ''}`, { hint: helpRef });
        inline = argv[++i]!;
      }
      if (spec.choices && !spec.choices.includes(inline))
        throw new UsageError(`option --${name} must be one of ${spec.choices.join(', ')} (got '${inline}')`, { hint: helpRef });
      set(name, spec, inline);
      continue;
    }
    if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      // -abc: clustered boolean shorts; -o VALUE / -oVALUE for a string short
      for (let j = 1; j < a.length; j++) {
        const ch = a[j]!;
        const name = shorts.get(ch);
        if (!name) throw new UsageError(`unknown option -${ch} for 'kumo ${commandPath}'`, { hint: helpRef });
        const spec = specs[name]!;
        if (spec.type === 'boolean') {
          set(name, spec, true);
          continue;
        }
        let v = a.slice(j + 1);
        if (!v) {
          if (i + 1 >= argv.length) throw new UsageError(`option -${ch} (--${name}) needs a value`, { hint: helpRef });
          v = argv[++i]!;
        }
        if (spec.choices && !spec.choices.includes(v))
          throw new UsageError(`option --${name} must be one of ${spec.choices.join(', ')} (got '${v}')`, { hint: helpRef });
        set(name, spec, v);
        break;
      }
      continue;
    }
    pos.push(a);
  }

  const usageHint = `usage: kumo ${usageLine(def, commandPath)}`;
  const positionals: ParsedArgs['positionals'] = {};
  let k = 0;
  for (const s of argSpecs) {
    if (s.variadic) {
      positionals[s.name] = pos.slice(k);
      if (s.required && pos.length <= k && !options.help) throw new UsageError(`'kumo ${commandPath}' needs ${s.name.toUpperCase()}`, { hint: helpRef });
      k = pos.length;
      break;
    }
    if (k < pos.length) positionals[s.name] = pos[k++];
    else if (s.required && !options.help) throw new UsageError(`'kumo ${commandPath}' needs ${s.name.toUpperCase()}`, { hint: usageHint });
  }
  if (k < pos.length && !options.help) {
    throw new UsageError(`unexpected argument '${pos[k]}' for 'kumo ${commandPath}'`, { hint: usageHint });
  }
  for (const [name, spec] of Object.entries(def.options ?? {})) {
    if (options[name] !== undefined) continue;
    if (spec.required && !options.help) throw new UsageError(`'kumo ${commandPath}' needs --${name} ${valueWord(spec)}`, { hint: usageHint });
    if (spec.type === 'boolean' && spec.default !== undefined) options[name] = spec.default;
  }
  return { options, positionals, rest };
}

// ---------------------------------------------------------------------------------------------
// usage lines, generated from the tables

function valueWord(o: OptionSpec): string {
  return o.choices ? o.choices.join('|') : (o.placeholder ?? 'VALUE');
}

/** One option as usage shows it: `--name NAME`, `[--cpus N]`, `[--port HOST:GUEST]...`, `[--no-wait]`. */
export function optionUsage(name: string, o: OptionSpec): string {
  const word = o.type === 'boolean' ? (o.default === true ? `--no-${name}` : `--${name}`) : `--${name} ${valueWord(o)}`;
  if (o.required) return o.multiple ? `${word}...` : word;
  return o.multiple ? `[${word}]...` : `[${word}]`;
}

function argUsage(a: ArgSpec): string {
  const w = (a.placeholder ?? a.name.toUpperCase()) + (a.variadic ? '...' : '');
  return a.required ? w : `[${w}]`;
}

/** The words of a command's usage after `kumo`: its path, arguments and options, from its tables. */
export function usageWords(def: CommandDef, path: string): string[] {
  const words = [path];
  if (def.subcommands?.length) return [...words, 'COMMAND', '[ARGS...]'];
  const args = (def.args ?? []).map(argUsage);
  const opts = Object.entries(def.options ?? {}).map(([n, o]) => optionUsage(n, o));
  if (def.acceptsRest) {
    const r: RestSpec = def.acceptsRest === true ? { placeholder: 'ARGS...' } : def.acceptsRest;
    // options must come before the arguments: what follows them is the rest
    return [...words, ...opts, ...args, r.required ? `[--] ${r.placeholder}` : `[[--] ${r.placeholder}]`];
  }
  return [...words, ...args, ...opts];
}

/** `launch [IMAGE] [--name NAME] ...`: the usage line after `kumo `. */
export function usageLine(def: CommandDef, path: string): string {
  return usageWords(def, path).join(' ');
}

/** Typed accessors, so commands read options without casts. */
export function optString(a: ParsedArgs, name: string): string | undefined {
  const v = a.options[name];
  return typeof v === 'string' ? v : undefined;
}
export function optBool(a: ParsedArgs, name: string): boolean {
  return a.options[name] === true;
}
export function optList(a: ParsedArgs, name: string): string[] {
  const v = a.options[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}
export function argString(a: ParsedArgs, name: string): string | undefined {
  const v = a.positionals[name];
  return typeof v === 'string' ? v : undefined;
}
export function argList(a: ParsedArgs, name: string): string[] {
  const v = a.positionals[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** Parse an integer option with bounds; names the option in its error. */
export function optInt(a: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const v = optString(a, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`option --${name} must be a whole number (got '${v}')`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`option --${name} must be between ${min} and ${max} (got ${n})`);
  return n;
}
