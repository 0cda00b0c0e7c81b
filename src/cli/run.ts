/**
 * Dispatch: find the command, parse its arguments, build the context, run, map errors.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { closest, GLOBAL_OPTIONS, parseArgs, type CommandContext, type CommandDef, type GlobalFlags } from './command.js';
import { Output, colorWanted } from './output.js';
import { errorJson, exitCodeFor, formatError } from './exit.js';
import { UsageError, InterruptedError } from '../core/errors.js';
import { setDebugSink } from '../core/log.js';
import { ensureHome, type KumoPaths } from '../config/paths.js';
import { COMMANDS_DIR, commandNames, version } from './main.js';
import { renderCommandHelp, renderMainHelp } from './help.js';

export async function loadCommand(name: string): Promise<CommandDef | undefined> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) return undefined;
  const file = join(COMMANDS_DIR, `${name}.js`);
  if (!existsSync(file)) return undefined;
  const mod = (await import(pathToFileURL(file).href)) as { default: CommandDef };
  return mod.default;
}

export async function loadAllCommands(): Promise<CommandDef[]> {
  const defs: CommandDef[] = [];
  for (const n of commandNames()) {
    const d = await loadCommand(n);
    if (d) defs.push(d);
  }
  return defs;
}

/** Pull global flags out of argv wherever they stand before the command word. */
function splitGlobals(argv: string[]): { globals: GlobalFlags; help: boolean; version: boolean; command?: string; rest: string[] } {
  const g: GlobalFlags = { json: false, debug: false, color: true };
  let help = false;
  let ver = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') g.json = true;
    else if (a === '--debug') g.debug = true;
    else if (a === '--no-color') g.color = false;
    else if (a === '--help' || a === '-h') help = true;
    else if (a === '--version' || a === '-V') ver = true;
    else if (a === '--home') {
      if (i + 1 >= argv.length) throw new UsageError('option --home needs a value (DIR)');
      g.home = argv[++i];
    } else if (a.startsWith('--home=')) g.home = a.slice(7);
    else if (a.startsWith('-')) {
      const sugg = closest(a.replace(/^-+/, ''), [...Object.keys(GLOBAL_OPTIONS), 'version']);
      throw new UsageError(`unknown option ${a}${sugg.length ? ` (did you mean --${sugg[0]}?)` : ''}`, { hint: "see 'kumo --help'" });
    } else break;
  }
  return { globals: g, help, version: ver, command: argv[i], rest: argv.slice(i + 1) };
}

export async function runCli(argv: string[]): Promise<number> {
  let globals: GlobalFlags = { json: argv.includes('--json'), debug: argv.includes('--debug'), color: true };
  let out = new Output({ json: globals.json, color: colorWanted(argv.includes('--no-color')) });
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(130); // second Ctrl-C: leave now
    ac.abort(new InterruptedError(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const split = splitGlobals(argv);
    globals = split.globals;
    if (globals.debug) setDebugSink((l) => process.stderr.write(`debug: ${l}\n`));
    if (split.version) {
      out.line(`kumo ${version()}`);
      return 0;
    }
    if (!split.command) {
      out.line(renderMainHelp(await loadAllCommands(), out));
      return split.help ? 0 : 2;
    }
    const found = await loadCommand(split.command);
    if (!found) {
      const sugg = closest(split.command, commandNames());
      throw new UsageError(`unknown command '${split.command}'${sugg.length ? ` (did you mean '${sugg[0]}'?)` : ''}`, { hint: "see 'kumo --help' for the list of commands" });
    }
    let def: CommandDef = found;
    let path = def.name;
    let rest = split.rest;
    // Descend into subcommands: `kumo image pull ...`
    while (def.subcommands?.length) {
      const word = rest.find((a) => !a.startsWith('-'));
      const sub: CommandDef | undefined = word ? def.subcommands.find((s) => s.name === word) : undefined;
      if (!sub) {
        if (split.help || rest.includes('--help') || rest.includes('-h') || !word) {
          out.line(renderCommandHelp(def, path, out));
          return split.help || rest.includes('--help') || rest.includes('-h') ? 0 : 2;
        }
        const sugg = closest(word, def.subcommands.map((s) => s.name));
        throw new UsageError(`unknown command 'kumo ${path} ${word}'${sugg.length ? ` (did you mean '${sugg[0]}'?)` : ''}`, { hint: `see 'kumo help ${path}'` });
      }
      rest = rest.filter((a, i) => i !== rest.indexOf(word!));
      def = sub;
      path = `${path} ${sub.name}`;
    }
    const parsed = parseArgs(def, rest, path);
    if (split.help || parsed.options.help) {
      out.line(renderCommandHelp(def, path, out));
      return 0;
    }
    // Flags given after the command word also count as globals.
    if (parsed.options.json) globals.json = true;
    if (parsed.options.debug && !globals.debug) {
      globals.debug = true;
      setDebugSink((l) => process.stderr.write(`debug: ${l}\n`));
    }
    if (parsed.options['no-color']) globals.color = false;
    if (typeof parsed.options.home === 'string') globals.home = parsed.options.home;
    globals.color = colorWanted(!globals.color);
    out = new Output({ json: globals.json, color: globals.color });
    let pathsPromise: Promise<KumoPaths> | undefined;
    const ctx: CommandContext = {
      globals,
      out,
      signal: ac.signal,
      paths: () => (pathsPromise ??= ensureHome({ home: globals.home })),
    };
    if (!def.run) throw new UsageError(`'kumo ${path}' needs a subcommand`, { hint: `see 'kumo help ${path}'` });
    (await import('../builtins.js')).registerBuiltins();
    const code = await def.run(ctx, parsed);
    out.finishProgress();
    return code ?? 0;
  } catch (e) {
    out.finishProgress();
    const err = ac.signal.aborted && !(e instanceof InterruptedError) && (e as Error)?.name === 'AbortError' ? new InterruptedError() : e;
    if (globals.json) process.stdout.write(JSON.stringify(errorJson(err)) + '\n');
    process.stderr.write(formatError(err, globals.debug, (s) => out.paint('red', s)) + '\n');
    return exitCodeFor(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
