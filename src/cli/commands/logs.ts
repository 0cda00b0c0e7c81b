/** `kumo logs NAME [--follow]`: the VM's serial console. */
import { argString, optBool, optInt, type CommandDef } from '../command.js';
import { INSTANCE_ARG } from '../flags.js';

const logs: CommandDef = {
  name: 'logs',
  summary: "show a VM's serial console output (kernel, systemd, cloud-init)",
  args: [INSTANCE_ARG],
  options: {
    follow: { type: 'boolean', short: 'f', description: 'keep printing what the console writes (Ctrl-C to stop)' },
    tail: { type: 'string', description: 'start with only the last BYTES of the log', placeholder: 'BYTES' },
    previous: { type: 'boolean', description: 'show the console of the boot before the last start (serial.log.1)' },
  },
  examples: ['kumo logs web', 'kumo logs -f web', 'kumo logs --previous web'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const tail = optInt(args, 'tail', 0, 2 ** 40);
    // Guest bytes reach a terminal only with their control characters defused; a pipe gets them as they are.
    const clean = ctx.out.tty ? (await import('../../core/text.js')).terminalSanitizer() : undefined;
    await lib.streamConsoleLog(paths, argString(args, 'name')!, (c) => ctx.out.stdout.write(clean ? clean(c) : c), {
      follow: optBool(args, 'follow'),
      previous: optBool(args, 'previous'),
      signal: ctx.signal,
      ...(tail !== undefined ? { tailBytes: tail } : {}),
    });
  },
};
export default logs;
