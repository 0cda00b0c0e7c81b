/**
 * `kumo launch [IMAGE]`: create an instance and start it, then wait until it is ready.
 */
import { argString, optBool, optList, optString, type CommandDef, type OptionSpec } from '../command.js';

/** Options shared by `kumo launch` and `kumo create`: what the instance is made of. */
export const INSTANCE_OPTIONS: Record<string, OptionSpec> = {
  name: { type: 'string', short: 'n', description: 'instance name (default: generated)', placeholder: 'NAME' },
  spec: { type: 'string', description: 'read the instance spec from a YAML file (flags override it)', placeholder: 'FILE' },
  cpus: { type: 'string', short: 'c', description: 'virtual CPUs (default 2)', placeholder: 'N' },
  memory: { type: 'string', short: 'm', description: 'memory, e.g. 1G or 1024 (MiB; default 1G)', placeholder: 'SIZE' },
  disk: { type: 'string', description: 'grow the disk to SIZE (e.g. 20G)', placeholder: 'SIZE' },
  'user-data': { type: 'string', description: 'cloud-init user-data file (#cloud-config, script, ...)', placeholder: 'FILE' },
  'ssh-key': { type: 'string', description: 'your private ssh key (FILE.pub beside it; default: kumo\u2019s own key)', placeholder: 'FILE' },
  port: { type: 'string', short: 'p', multiple: true, description: 'forward a host port to the guest (127.0.0.1 unless ADDR is given)', placeholder: '[ADDR:]HOST:GUEST[/udp]' },
  accel: { type: 'string', description: 'accelerator (default auto: KVM when a probe shows it works, else TCG)', choices: ['auto', 'kvm', 'tcg'] },
  firmware: { type: 'string', description: 'firmware: bios (SeaBIOS, default) or uefi (OVMF, with per-instance EFI variables)', choices: ['bios', 'uefi'], placeholder: 'FW' },
  'seed-format': { type: 'string', description: 'cloud-init seed: nocloud (default, label cidata) or configdrive (label config-2)', choices: ['nocloud', 'configdrive'], placeholder: 'FORMAT' },
  driver: { type: 'string', description: 'backend: qemu (default; QEMU run by kumo) or libvirt (a libvirt domain); the registered drivers are accepted', placeholder: 'NAME' },
  connect: { type: 'string', description: 'libvirt only: connection URI (default $LIBVIRT_DEFAULT_URI, else qemu:///system for root, qemu:///session otherwise)', placeholder: 'URI' },
  pool: { type: 'string', description: 'libvirt only: storage pool for the disk and seed volumes (needed for a remote URI)', placeholder: 'NAME' },
  network: { type: 'string', description: 'libvirt only: user (default, ports forwarded), network:NAME (a libvirt network, address from DHCP) or bridge:NAME', placeholder: 'NET' },
  user: { type: 'string', description: 'login user made in the guest (default kumo)', placeholder: 'USER' },
  
};

const launch: CommandDef = {
  name: 'launch',
  summary: 'create a VM from an image, start it and wait until ssh and cloud-init are ready',
  usage:
    'launch [IMAGE] [--name N] [--cpus N] [--memory SIZE] [--disk SIZE] [--user-data FILE] [--ssh-key FILE] [--port HOST:GUEST]... [--accel auto|kvm|tcg] [--driver NAME [--connect URI] [--pool NAME] [--network NET]] [--no-wait] [--timeout SEC]',
  description:
    'IMAGE is an alias (debian-12), an image id, a URL or a local file; it is fetched and verified into the image store if needed, and the VM runs on a copy-on-write overlay of it. kumo makes an ssh host key for the VM and passes it in the cloud-init seed, so `kumo ssh` is verified from the first connection. Readiness means ssh answers and cloud-init has finished for this instance. ' +
    'The VM runs under QEMU directly (--driver qemu, the default) or as a libvirt domain (--driver libvirt; --connect, --pool and --network are its settings, kept with the instance).',
  args: [{ name: 'image', description: 'image alias, id, URL or file (default: debian-12)' }],
  options: {
    ...INSTANCE_OPTIONS,
    wait: { type: 'boolean', description: 'wait until ready (default; --no-wait returns once the VM is started)' },
    timeout: { type: 'string', description: 'seconds to wait for readiness (default 600)', placeholder: 'SEC' },
  },
  examples: [
    'kumo launch debian-12 --name web --port 8080:80 --user-data init.yaml',
    'kumo launch ./my.qcow2 --cpus 4 --memory 4G --no-wait',
    'kumo launch --spec web.yaml',
    'kumo launch deb12 --driver libvirt --connect qemu:///system',
    'kumo launch debian-12 --driver libvirt --connect qemu+ssh://me@host/system --pool default',
  ],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const spec = await import('../../config/spec.js');
    const paths = await ctx.paths();
    const base = optString(args, 'spec') ? await spec.loadSpecFile(optString(args, 'spec')!) : {};
    const input = specInput(args, base);
    if (input.name === undefined) input.name = `vm-${Math.random().toString(16).slice(2, 8)}`;
    const onEvent = ctx.out.events();
    const rec = await lib.createInstance(paths, input, { onEvent, signal: ctx.signal });
    const wait = args.options.wait !== false;
    try {
      const r = await lib.startInstance(paths, rec.name, { onEvent, signal: ctx.signal, wait });
      ctx.out.finishProgress();
      ctx.out.data({ ...r.record, accel: r.accel, ssh: { ...r.record.ssh, ...(r.ssh ? { host: r.ssh.host, port: r.ssh.port } : {}) }, ready: r.ready ?? null }, () => {
        ctx.out.note(`${rec.name} is ${wait ? 'ready' : 'starting'} (${r.record.driver}, ${r.accel}); ${r.ssh ? `ssh on ${r.ssh.host}:${r.ssh.port}` : 'its ssh address is not known yet'}`);
        ctx.out.line(rec.name);
        ctx.out.note(`  kumo ssh ${rec.name}    kumo exec ${rec.name} -- CMD    kumo delete --force ${rec.name}`);
      });
    } catch (e) {
      ctx.out.finishProgress();
      if (!optBool(args, 'json')) ctx.out.note(`instance '${rec.name}' was created and is kept for inspection (kumo logs ${rec.name}; kumo delete --force ${rec.name})`);
      throw e;
    }
  },
};

export function specInput(args: Parameters<NonNullable<CommandDef['run']>>[1], base: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = { ...base };
  const image = argString(args, 'image');
  if (image !== undefined) o.image = image;
  const map: [string, string][] = [
    ['name', 'name'],
    ['cpus', 'cpus'],
    ['memory', 'memory'],
    ['disk', 'disk'],
    ['user-data', 'userData'],
    ['ssh-key', 'sshKey'],
    ['accel', 'accel'],
    ['firmware', 'firmware'],
    ['seed-format', 'seedFormat'],
    ['driver', 'driver'],
    ['connect', 'connect'],
    ['pool', 'pool'],
    ['network', 'network'],
    ['user', 'user'],
    ['timeout', 'timeout'],
  ];
  for (const [flag, field] of map) {
    const v = optString(args, flag);
    if (v !== undefined) o[field] = v;
  }
  const ports = optList(args, 'port');
  if (ports.length) o.ports = [...((base.ports as unknown[]) ?? []), ...ports];
  return o;
}

export default launch;
