import type { CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';

const help: CommandDef = {
  name: 'help',
  summary: 'show help for kumo or for one command',
  args: [{ name: 'command', variadic: true, description: 'the command to explain' }],
  examples: ['kumo help launch', 'kumo help image pull'],
  async run(ctx, args) {
    const { loadCommand, loadAllCommands } = await import('../registry.js');
    const { renderCommandHelp, renderMainHelp } = await import('../help.js');
    const words = (args.positionals.command as string[] | undefined) ?? [];
    if (!words.length) {
      ctx.out.line(renderMainHelp(await loadAllCommands(), ctx.out));
      return;
    }
    const found = await loadCommand(words[0]!);
    if (!found) throw new UsageError(`unknown command '${words[0]}'`, { hint: "see 'kumo --help' for the list of commands" });
    let def: CommandDef = found;
    let path = def.name;
    for (const w of words.slice(1)) {
      const sub: CommandDef | undefined = def.subcommands?.find((s) => s.name === w);
      if (!sub) throw new UsageError(`unknown command 'kumo ${path} ${w}'`, { hint: `see 'kumo help ${path}'` });
      def = sub;
      path += ` ${w}`;
    }
    ctx.out.line(renderCommandHelp(def, path, ctx.out));
  },
};
export default help;
