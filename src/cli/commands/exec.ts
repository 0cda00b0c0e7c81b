/** `kumo exec NAME -- CMD...`: run a command in the guest; its stdout, stderr and exit code are passed through. */
import { argString, type CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';

const exec: CommandDef = {
  name: 'exec',
  summary: 'run a command in a VM (stdin, stdout, stderr and the exit code pass through)',
  usage: 'exec NAME -- CMD [ARGS...]',
  description: 'Each word after -- is passed to the guest as one argument (quoted for its shell). To use shell syntax, run a shell: kumo exec web -- sh -c "ls | wc -l".',
  args: [{ name: 'name', required: true, description: 'instance name' }],
  acceptsRest: true,
  examples: ['kumo exec web -- uname -a', 'kumo exec web -- sh -c "cat /etc/os-release | head -1"'],
  async run(ctx, args) {
    if (!args.rest.length) throw new UsageError("'kumo exec' needs a command after --", { hint: 'e.g. kumo exec web -- uname -a' });
    const { liveSharedTarget } = await import('../../instance/live-target.js');
    const guest = await import('../../guest/ssh.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    // A live shared master means a running, verified VM: skip the status check (and its imports).
    const t = (await liveSharedTarget(paths, name)) ?? (await (await import('../../instance/cli-helpers.js')).requireRunning(paths, name));
    return guest.spawnInherited('ssh', guest.sshArgv(t, guest.shellQuote(args.rest), { tty: false, ...(await guest.sharedArgvOptions(t)) }), ctx.signal);
  },
};
export default exec;
