/**
 * Dispatch: find the command (descending through subcommand words), parse its arguments, build
 * the context, run, map errors.
 */
import { closest, globalOption, GLOBAL_OPTIONS, parseArgs, type CommandContext, type CommandDef, type GlobalFlags } from './command.js';
import { Output, colorWanted } from './output.js';
import { errorJson, exitCodeFor, formatError } from './exit.js';
import { UsageError, InterruptedError } from '../core/errors.js';
import { setDebugSink } from '../core/log.js';
import type { KumoPaths } from '../config/paths.js';
import { ALIASES, commandNames, loadCommand, loadAllCommands, version } from './registry.js';
import { renderCommandHelp, renderMainHelp } from './help.js';

const isHelp = (a: string) => a === '--help' || a === '-h';

interface Dispatch {
  globals: GlobalFlags;
  help: boolean;
  version: boolean;
  /** The command reached (a leaf, or a command with subcommands when no subcommand word was given). */
  def?: CommandDef;
  path: string;
  /** The arguments of the leaf command. */
  rest: string[];
}

/**
 * Walk the command words: global options are taken wherever they stand before or between the
 * words (`kumo image --home /x list`); options of the leaf command given before its word are
 * passed on to it; the first word after the leaf command's word starts its arguments.
 */
async function dispatch(argv: readonly string[]): Promise<Dispatch> {
  const d: Dispatch = { globals: { json: false, debug: false, color: true }, help: false, version: false, path: '', rest: [] };
  const carried: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    const g = globalOption(a);
    if (g) {
      if (g.spec.type === 'string') {
        let v = g.inline;
        if (v === undefined) {
          if (i + 1 >= argv.length) throw new UsageError(`option --${g.name} needs a value${g.spec.placeholder ? ` (${g.spec.placeholder})` : ''}`);
          v = argv[++i]!;
        }
        if (g.name === 'home') d.globals.home = v;
        continue;
      }
      const on = g.inline === undefined || ['true', '1', 'yes'].includes(g.inline);
      if (g.name === 'json') d.globals.json = on;
      else if (g.name === 'debug') d.globals.debug = on;
      else if (g.name === 'no-color') d.globals.color = !on;
      else if (g.name === 'help') d.help = on;
      continue;
    }
    if (!d.def && (a === '--version' || a === '-V')) {
      d.version = true;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      if (!d.def) {
        const sugg = closest(a.replace(/^-+/, ''), [...Object.keys(GLOBAL_OPTIONS), 'version']);
        throw new UsageError(`unknown option ${a}${sugg.length ? ` (did you mean --${sugg[0]}?)` : ''}`, { hint: "see 'kumo --help'" });
      }
      carried.push(a); // an option of the subcommand, given before its word
      continue;
    }
    if (!d.def) {
      const found = await loadCommand(a);
      if (!found) {
        const sugg = closest(a, [...commandNames(), ...Object.keys(ALIASES)]);
        throw new UsageError(`unknown command '${a}'${sugg.length ? ` (did you mean '${sugg[0]}'?)` : ''}`, { hint: "see 'kumo --help' for the list of commands" });
      }
      d.def = found;
      d.path = found.name;
    } else {
      const sub: CommandDef | undefined = d.def.subcommands!.find((s) => s.name === a);
      if (!sub) {
        if (d.help || argv.slice(i + 1).some(isHelp)) {
          d.help = true;
          break;
        }
        const sugg = closest(a, d.def.subcommands!.map((s) => s.name));
        throw new UsageError(`unknown command 'kumo ${d.path} ${a}'${sugg.length ? ` (did you mean '${sugg[0]}'?)` : ''}`, { hint: `see 'kumo help ${d.path}'` });
      }
      d.def = sub;
      d.path = `${d.path} ${sub.name}`;
    }
    if (!d.def.subcommands?.length) {
      i++;
      break;
    }
  }
  d.rest = [...carried, ...argv.slice(i)];
  return d;
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
    const d = await dispatch(argv);
    globals = d.globals;
    // --json after the command word (before any `--`) holds for errors of parsing too.
    const sep = d.rest.indexOf('--');
    if ((sep < 0 ? d.rest : d.rest.slice(0, sep)).includes('--json')) globals.json = true;
    if (globals.debug) setDebugSink((l) => process.stderr.write(`debug: ${l}\n`));
    if (d.version) {
      out.line(`kumo ${version()}`);
      return 0;
    }
    if (!d.def) {
      out.line(renderMainHelp(await loadAllCommands(), out));
      return d.help ? 0 : 2;
    }
    const def = d.def;
    const path = d.path;
    if (def.subcommands?.length) {
      // `kumo image` (no subcommand word): its help; an error unless help was asked for
      out.line(renderCommandHelp(def, path, out));
      return d.help || d.rest.some(isHelp) ? 0 : 2;
    }
    const parsed = parseArgs(def, d.rest, path);
    if (d.help || parsed.options.help) {
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
      // Expired instances (ttl) and those of dead test processes go first, whatever the command
      // (instance/reaper.ts); then what killed captures left, a sealing machine and its folder
      // (golden/sweep.ts; `kumo repair` sweeps those itself, to report them).
      paths: () =>
        (pathsPromise ??= import('../config/paths.js')
          .then((p) => p.ensureHome({ home: globals.home }))
          .then(async (paths) => {
            await (await import('../instance/reaper.js')).sweepExpired(paths);
            if (path !== 'repair')
              for (const s of await (await import('../golden/sweep.js')).sweepCaptureLeftovers(paths).catch(() => []))
                out.warn(`removed what a killed capture of '${s.instance}' left: its work folder${s.machineStopped ? ' and its sealing machine' : ''}`);
            return paths;
          })),
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
