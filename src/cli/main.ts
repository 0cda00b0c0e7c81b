/**
 * The kumo CLI entry point: the `--version` fast path, then dispatch (run.ts).
 *
 * Start-up must stay fast (`kumo --version` well under 150 ms, see bench/startup.bench.ts):
 * this file imports nothing heavy, `--version` reads package.json and exits, and a command
 * module is imported only when it runs. Command modules import the library lazily in `run`.
 */
import { version } from './registry.js';

export async function main(argv: string[]): Promise<number> {
  // Fast paths that need no module loading.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V' || argv[0] === 'version')) {
    process.stdout.write(`kumo ${version()}\n`);
    return 0;
  }
  // Shell completion (hidden; the scripts of `kumo completion` call it): no dispatch, no KUMO_HOME creation.
  if (argv[0] === '__complete') return (await import('./complete-source.js')).runComplete(argv.slice(1));
  const { runCli } = await import('./run.js');
  return runCli(argv);
}
