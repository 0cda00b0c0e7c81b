/**
 * `kumo image ...`: the subcommands live in commands/image/: build.ts (the image builder) and
 * store.ts (pull, list, info, rm, prune, import, sync), templates.ts (warm, and the templates'
 * part of list, info and rm).
 */
import type { CommandDef } from '../command.js';
import { buildCommands } from './image/build.js';
import { storeCommands } from './image/store.js';
import { templateCommands } from './image/templates.js';

const image: CommandDef = {
  name: 'image',
  summary: 'pull, build, list and clean up base images',
  subcommands: [...storeCommands, ...buildCommands, ...templateCommands],
  examples: ['kumo image pull debian-12', 'kumo image build --name my-debian', 'kumo image list', 'kumo image warm debian-12', 'kumo image prune'],
};
export default image;
