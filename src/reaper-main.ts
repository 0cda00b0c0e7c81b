/**
 * The detached reaper program (src/instance/reaper.ts starts it; never run by hand):
 *   node dist/src/reaper-main.js ttl HOME              delete instances whose ttl is up, until none has one
 *   node dist/src/reaper-main.js watch HOME PID START  when process PID (started at START) is gone, delete what it registered
 * It sits beside builtins.ts because it needs the drivers registered, as the library entry does.
 */
import { registerBuiltins } from './builtins.js';
import { runReaperCommand } from './instance/reaper.js';

registerBuiltins();
runReaperCommand(process.argv.slice(2)).then(
  () => process.exit(0),
  () => process.exit(1),
);
