/** `kumo exec NAME CMD...` (or `NAME -- CMD...`): run a command in the guest; its stdout, stderr and exit code are passed through. */
import { argString, type CommandDef } from '../command.js';
import { INSTANCE_ARG } from '../flags.js';
import { UsageError } from '../../core/errors.js';

const exec: CommandDef = {
  name: 'exec',
  summary: 'run a command in a VM (stdin, stdout, stderr and the exit code pass through)',
  description:
    'Everything after NAME is the command, options included (a `--` before it is accepted and dropped). Each word is passed to the guest as one argument (quoted for its shell). To use shell syntax, run a shell: kumo exec web -- sh -c "ls | wc -l".',
  args: [INSTANCE_ARG],
  acceptsRest: { placeholder: 'CMD [ARGS...]', required: true },
  examples: ['kumo exec web uname -a', 'kumo exec web -- uname -a', 'kumo exec web -- sh -c "cat /etc/os-release | head -1"'],
  async run(ctx, args) {
    if (!args.rest.length) throw new UsageError("'kumo exec' needs a command after the instance name", { hint: 'e.g. kumo exec web uname -a' });
    const { liveSharedTarget } = await import('../../instance/live-target.js');
    const guest = await import('../../guest/ssh.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    // A live shared master means a running, verified VM: skip the status check (and its imports).
    const t = (await liveSharedTarget(paths, name)) ?? (await (await import('../../instance/status.js')).requireRunning(paths, name));
    return guest.spawnInherited('ssh', guest.sshArgv(t, guest.shellQuote(args.rest), { tty: false, ...(await guest.sharedArgvOptions(t)) }), ctx.signal);
  },
};
export default exec;
