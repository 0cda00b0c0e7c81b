/**
 * The command registry: one file per top-level command in commands/, loaded only when needed.
 * Imports nothing heavy (main.ts uses it on the fast path; run.ts and the help and completion
 * commands use it to find commands).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import type { CommandDef } from './command.js';

const here = dirname(fileURLToPath(import.meta.url));
export const COMMANDS_DIR = join(here, 'commands');

export function version(): string {
  // dist/src/cli/registry.js -> package.json three levels up
  const pkg = JSON.parse(readFileSync(join(here, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Names of all top-level commands (files in commands/). */
export function commandNames(): string[] {
  return readdirSync(COMMANDS_DIR)
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Short names of commands (`kumo ls`), as Docker, Lima and Multipass users type them. */
export const ALIASES: Readonly<Record<string, string>> = { ls: 'list', rm: 'delete', sh: 'shell' };

/** The aliases of one command. */
export function aliasesOf(name: string): string[] {
  return Object.entries(ALIASES)
    .filter(([, n]) => n === name)
    .map(([a]) => a);
}

export async function loadCommand(word: string): Promise<CommandDef | undefined> {
  const name = ALIASES[word] ?? word;
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
