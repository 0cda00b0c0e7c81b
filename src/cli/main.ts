/**
 * The kumo CLI entry point: global flags, dispatch to src/cli/commands/<name>.js, error mapping.
 *
 * Start-up must stay fast (`kumo --version` well under 150 ms, see bench/startup.bench.ts):
 * this file imports nothing heavy, `--version` reads package.json and exits, and a command
 * module is imported only when it runs. Command modules import the library lazily in `run`.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
export const COMMANDS_DIR = join(here, 'commands');

export function version(): string {
  // dist/src/cli/main.js -> package.json three levels up
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

export async function main(argv: string[]): Promise<number> {
  // Fast paths that need no module loading.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version')) {
    process.stdout.write(`kumo ${version()}\n`);
    return 0;
  }
  const { runCli } = await import('./run.js');
  return runCli(argv);
}
