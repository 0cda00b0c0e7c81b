/** `kumo start NAME`: start a stopped instance and wait until it is ready. */
import { argString, optInt, type CommandDef } from '../command.js';
import { sshWhere } from '../output.js';
import { INSTANCE_ARG, timeoutOption, waitOption } from '../flags.js';

const start: CommandDef = {
  name: 'start',
  summary: 'start a stopped VM (or resume a suspended one) and wait until it is ready',
  args: [INSTANCE_ARG],
  options: {
    wait: waitOption('wait until ready (default; --no-wait returns once started)'),
    timeout: timeoutOption('seconds to wait for readiness (default: the instance\u2019s)'),
  },
  examples: ['kumo start web', 'kumo start web --no-wait'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    const timeoutSec = optInt(args, 'timeout', 1, 86400);
    const r = await lib.startInstance(paths, name, { onEvent: ctx.out.events(), signal: ctx.signal, wait: args.options.wait !== false, ...(timeoutSec ? { timeoutSec } : {}) });
    ctx.out.finishProgress();
    ctx.out.data({ name, accel: r.accel, sshPort: r.record.ssh.port, ssh: r.ssh ?? null, ready: r.ready ?? null, restored: r.restored ?? null }, () =>
      ctx.out.note(`${name} is ${r.ready ? 'ready' : 'starting'} (${r.accel}${r.restored ? `, ${r.restored.kind === 'suspend' ? 'resumed' : 'restored'} in ${r.restored.startMs + r.restored.restoreMs + (r.restored.identityMs ?? 0) + (r.restored.sshMs ?? 0)} ms` : ''}); ${sshWhere(r.ssh)}`),
    );
  },
};
export default start;
