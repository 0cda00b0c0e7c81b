import type { CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';

const help: CommandDef = {
  name: 'help',
  summary: 'show help for kumo or for one command',
  args: [{ name: 'command', variadic: true, description: 'the command to explain' }],
  options: { markdown: { type: 'boolean', description: 'print the whole command reference as Markdown (docs/cli.md is made so)' } },
  examples: ['kumo help launch', 'kumo help image pull', 'kumo help --markdown > docs/cli.md'],
  async run(ctx, args) {
    const { loadCommand, loadAllCommands } = await import('../registry.js');
    const { renderCommandHelp, renderMainHelp, renderMarkdown } = await import('../help.js');
    const words = (args.positionals.command as string[] | undefined) ?? [];
    if (args.options.markdown) {
      if (words.length) throw new UsageError('--markdown prints the whole reference; give no COMMAND with it', { hint: 'kumo help --markdown > docs/cli.md' });
      ctx.out.stdout.write(renderMarkdown(await loadAllCommands()));
      return;
    }
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
