/** `kumo ssh NAME [CMD...]`: an ssh session (the terminal is passed through), host key already verified. */
import { argString, type CommandDef } from '../command.js';
import { INSTANCE_ARG } from '../flags.js';

const ssh: CommandDef = {
  name: 'ssh',
  summary: 'open a shell in a VM, or run a command there with the terminal attached',
  args: [INSTANCE_ARG],
  acceptsRest: { placeholder: 'CMD...' },
  description: 'Everything after NAME is the command to run there, options included (a `--` before it is accepted and dropped); the options of `kumo ssh` go before NAME.',
  options: { 'print-command': { type: 'boolean', description: 'print the ssh command line instead of running it' } },
  examples: ['kumo ssh web', 'kumo ssh web -- sudo journalctl -f'],
  async run(ctx, args) {
    const { sshSession } = await import('../ssh-session.js');
    return sshSession(ctx, argString(args, 'name')!, args.rest, !!args.options['print-command']);
  },
};
export default ssh;
