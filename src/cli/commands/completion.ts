import type { CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';

const completion: CommandDef = {
  name: 'completion',
  summary: 'print a shell completion script (bash, zsh or fish)',
  args: [{ name: 'shell', required: true, placeholder: 'bash|zsh|fish', description: 'bash, zsh or fish' }],
  description:
    "Completes commands, subcommands, each command's own options, option values (choices, files) and instance and image names, asked of the live store at each TAB (the script calls the hidden 'kumo __complete WORD...').",
  examples: [
    'source <(kumo completion bash)            # bash, this shell',
    'kumo completion bash > /etc/bash_completion.d/kumo',
    'kumo completion zsh > "${fpath[1]}/_kumo"',
    'kumo completion fish > ~/.config/fish/completions/kumo.fish',
  ],
  async run(ctx, args) {
    const shell = args.positionals.shell as string;
    const { completionScript } = await import('../completion.js');
    if (!['bash', 'zsh', 'fish'].includes(shell)) throw new UsageError(`unknown shell '${shell}'`, { hint: 'use bash, zsh or fish' });
    ctx.out.stdout.write(completionScript(shell as 'bash' | 'zsh' | 'fish'));
  },
};
export default completion;
