import type { CommandDef } from '../../command.js';

/** Filled in as the area lands. */
export const storeCommands: CommandDef[] = [];
