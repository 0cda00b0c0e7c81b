/**
 * `kumo create [IMAGE]`: like launch, but the instance is not started.
 */
import type { CommandDef } from '../command.js';
import { IMAGE_ARG, INSTANCE_OPTIONS, applyLifetimeFlags, LIFETIME_OPTIONS, loadSpecInput, timeoutOption } from '../flags.js';

const create: CommandDef = {
  name: 'create',
  summary: 'create a VM (disk overlay, cloud-init seed, keys) without starting it',
  description: "Makes everything `kumo launch` makes, then stops: start it later with 'kumo start NAME'.",
  args: [IMAGE_ARG],
  options: {
    ...INSTANCE_OPTIONS,
    ...LIFETIME_OPTIONS,
    timeout: timeoutOption('seconds later starts wait for readiness (default 600)'),
  },
  examples: ['kumo create debian-12 --name db --memory 2G', 'kumo start db', 'kumo create deb12 --name lv --driver libvirt --connect qemu:///system'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const { newInstanceName } = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const input = await loadSpecInput(args);
    await applyLifetimeFlags(args, input);
    if (input.name === undefined) input.name = newInstanceName();
    const rec = await lib.createInstance(paths, input, { onEvent: ctx.out.events(), signal: ctx.signal });
    ctx.out.finishProgress();
    ctx.out.data(rec, () => {
      ctx.out.line(rec.name);
      ctx.out.note(`created; start it with: kumo start ${rec.name}`);
    });
  },
};
export default create;
