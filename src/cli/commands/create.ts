/**
 * `kumo create [IMAGE]`: like launch, but the instance is not started.
 */
import { optString, type CommandDef } from '../command.js';

const create: CommandDef = {
  name: 'create',
  summary: 'create a VM (disk overlay, cloud-init seed, keys) without starting it',
  usage: 'create [IMAGE] --name N [--cpus N] [--memory SIZE] [--disk SIZE] [--user-data FILE] [--ssh-key FILE] [--port HOST:GUEST]... [--driver NAME [--connect URI] [--pool NAME] [--network NET]]',
  description: "Makes everything `kumo launch` makes, then stops: start it later with 'kumo start NAME'.",
  args: [{ name: 'image', description: 'image alias, id, URL or file (default: debian-12)' }],
  options: {
    name: { type: 'string', short: 'n', description: 'instance name (default: generated)', placeholder: 'NAME' },
    spec: { type: 'string', description: 'read the instance spec from a YAML file (flags override it)', placeholder: 'FILE' },
    cpus: { type: 'string', short: 'c', description: 'virtual CPUs (default 2)', placeholder: 'N' },
    memory: { type: 'string', short: 'm', description: 'memory, e.g. 1G or 1024 (MiB; default 1G)', placeholder: 'SIZE' },
    disk: { type: 'string', description: 'grow the disk to SIZE (e.g. 20G)', placeholder: 'SIZE' },
    'user-data': { type: 'string', description: 'cloud-init user-data file (#cloud-config, script, ...)', placeholder: 'FILE' },
    'ssh-key': { type: 'string', description: 'your private ssh key (FILE.pub beside it; default: kumo\u2019s own key)', placeholder: 'FILE' },
    port: { type: 'string', short: 'p', multiple: true, description: 'forward a host port to the guest (127.0.0.1 unless ADDR is given)', placeholder: '[ADDR:]HOST:GUEST[/udp]' },
    accel: { type: 'string', description: 'accelerator (default auto: KVM when a probe shows it works, else TCG)', choices: ['auto', 'kvm', 'tcg'] },
    driver: { type: 'string', description: 'backend: qemu (default; QEMU run by kumo) or libvirt (a libvirt domain); the registered drivers are accepted', placeholder: 'NAME' },
    connect: { type: 'string', description: 'libvirt only: connection URI (default $LIBVIRT_DEFAULT_URI, else qemu:///system for root, qemu:///session otherwise)', placeholder: 'URI' },
    pool: { type: 'string', description: 'libvirt only: storage pool for the disk and seed volumes (needed for a remote URI)', placeholder: 'NAME' },
    network: { type: 'string', description: 'libvirt only: user (default, ports forwarded), network:NAME (a libvirt network, address from DHCP) or bridge:NAME', placeholder: 'NET' },
    user: { type: 'string', description: 'login user made in the guest (default kumo)', placeholder: 'USER' },
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
