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
    const { requireRunning } = await import('../../instance/index.js');
    const guest = await import('../../guest/index.js');
    const paths = await ctx.paths();
    const t = await requireRunning(paths, argString(args, 'name')!);
    const cmd = args.rest.length ? guest.shellQuote(args.rest) : undefined;
    const argv = guest.sshArgv(t, cmd, { tty: !!process.stdin.isTTY, ...(await guest.sharedArgvOptions(t)) });
    if (args.options['print-command']) {
      const { formatArgv } = await import('../../core/log.js');
      ctx.out.line(formatArgv(['ssh', ...argv]));
      return 0;
    }
    return guest.spawnInherited('ssh', argv, ctx.signal);
  },
};
export default ssh;
