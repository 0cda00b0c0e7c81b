/**
 * `kumo create [IMAGE]`: like launch, but the instance is not started.
 */
import { optString, type CommandDef } from '../command.js';
import { INSTANCE_OPTIONS } from './launch.js';

const create: CommandDef = {
  name: 'create',
  summary: 'create a VM (disk overlay, cloud-init seed, keys) without starting it',
  usage: 'create [IMAGE] --name N [--cpus N] [--memory SIZE] [--disk SIZE] [--user-data FILE] [--ssh-key FILE] [--port HOST:GUEST]... [--driver NAME [--connect URI] [--pool NAME] [--network NET]]',
  description: "Makes everything `kumo launch` makes, then stops: start it later with 'kumo start NAME'.",
  args: [{ name: 'image', description: 'image alias, id, URL or file (default: debian-12)' }],
  options: {
    ...INSTANCE_OPTIONS,
    timeout: { type: 'string', description: 'seconds later starts wait for readiness (default 600)', placeholder: 'SEC' },
  },
  examples: ['kumo create debian-12 --name db --memory 2G', 'kumo start db', 'kumo create deb12 --name lv --driver libvirt --connect qemu:///system'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const spec = await import('../../config/spec.js');
    const { specInput } = await import('./launch.js');
    const paths = await ctx.paths();
    const base = optString(args, 'spec') ? await spec.loadSpecFile(optString(args, 'spec')!) : {};
    const input = specInput(args, base);
    if (input.name === undefined) input.name = `vm-${Math.random().toString(16).slice(2, 8)}`;
    const rec = await lib.createInstance(paths, input, { onEvent: ctx.out.events(), signal: ctx.signal });
    ctx.out.finishProgress();
    ctx.out.data(rec, () => {
      ctx.out.line(rec.name);
      ctx.out.note(`created; start it with: kumo start ${rec.name}`);
    });
  },
};
export default create;
