/** `kumo start NAME`: start a stopped instance and wait until it is ready. */
import { argString, optInt, type CommandDef } from '../command.js';

const start: CommandDef = {
  name: 'start',
  summary: 'start a stopped VM and wait until it is ready',
  usage: 'start NAME [--no-wait] [--timeout SEC]',
  args: [{ name: 'name', required: true, description: 'instance name' }],
  options: {
    wait: { type: 'boolean', description: 'wait until ready (default; --no-wait returns once started)' },
    timeout: { type: 'string', description: 'seconds to wait for readiness (default: the instance\u2019s)', placeholder: 'SEC' },
  },
  examples: ['kumo start web', 'kumo start web --no-wait'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    const timeoutSec = optInt(args, 'timeout', 1, 86400);
    const r = await lib.startInstance(paths, name, { onEvent: ctx.out.events(), signal: ctx.signal, wait: args.options.wait !== false, ...(timeoutSec ? { timeoutSec } : {}) });
    ctx.out.finishProgress();
    ctx.out.data({ name, accel: r.accel, sshPort: r.record.ssh.port, ready: r.ready ?? null }, () => ctx.out.note(`${name} is ${r.ready ? 'ready' : 'starting'} (${r.accel}); ssh on 127.0.0.1:${r.record.ssh.port}`));
  },
};
export default start;
