/**
 * The one explicit registration step of kumo's built-in parts (nothing registers itself as a
 * side effect of being imported): the drivers (their option fields, doctor checks and disk
 * sources) the instances' and the warm templates' disks as users of stored images. The library entry (src/index.ts)
 * and the CLI (src/cli/run.ts, before a command runs) call it; it is idempotent.
 */
import { registerBuiltinDrivers } from './driver/registry.js';
import { registerInstanceDiskSource } from './instance/disks.js';
import { registerTemplateDiskSource } from './template/store.js';

export function registerBuiltins(): void {
  registerBuiltinDrivers();
  registerInstanceDiskSource();
  registerTemplateDiskSource();
}
