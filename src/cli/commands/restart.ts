/** `kumo restart NAME`: stop (gracefully, or --force) then start and wait. */
import { argString, optBool, optInt, type CommandDef } from '../command.js';

const restart: CommandDef = {
  name: 'restart',
  summary: 'stop a VM and start it again',
  usage: 'restart NAME [--force] [--no-wait] [--timeout SEC]',
  args: [{ name: 'name', required: true, description: 'instance name' }],
  options: {
    force: { type: 'boolean', short: 'f', description: 'pull the plug instead of an ACPI power-down' },
    wait: { type: 'boolean', description: 'wait until ready (default)' },
    timeout: { type: 'string', description: 'seconds to wait for readiness', placeholder: 'SEC' },
  },
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    const timeoutSec = optInt(args, 'timeout', 1, 86400);
    const r = await lib.restartInstance(paths, name, { force: optBool(args, 'force'), wait: args.options.wait !== false, onEvent: ctx.out.events(), signal: ctx.signal, ...(timeoutSec ? { timeoutSec } : {}) });
    ctx.out.finishProgress();
    ctx.out.data({ name, accel: r.accel, sshPort: r.record.ssh.port, ready: r.ready ?? null }, () => ctx.out.note(`${name} restarted; ssh on 127.0.0.1:${r.record.ssh.port}`));
  },
};
export default restart;
