import type { CommandDef } from '../../command.js';
import { optBool, optList, optString } from '../../command.js';

const build: CommandDef = {
  name: 'build',
  summary: 'build a bootable cloud image from distribution packages, composed of elements',
  description:
    'Bootstraps a root tree from the distribution\'s packages (cached), runs the elements\' phase scripts in it, ' +
    'and writes a whole-disk image (MBR, ESP, ext4 root labelled cloudimg-rootfs, GRUB for BIOS and UEFI). ' +
    'Without --output the image is registered in kumo\'s image store under --name. Needs root. ' +
    'Default elements: vm cloud-init openssh-server growroot fast-boot sysprep (the distro element is always added).',
  options: {
    distro: { type: 'string', description: 'distribution (default: debian)', placeholder: 'NAME' },
    release: { type: 'string', description: 'release (default: the distro\'s default, bookworm for debian)', placeholder: 'NAME' },
    element: { type: 'string', short: 'e', multiple: true, description: 'an element to include; replaces the default list', placeholder: 'NAME' },
    'elements-path': { type: 'string', multiple: true, description: 'a folder of extra elements, searched before the built-in ones', placeholder: 'DIR' },
    size: { type: 'string', description: 'virtual disk size (default: 4G); the root grows to it at first boot', placeholder: 'SIZE' },
    format: { type: 'string', description: 'output format (default: qcow2)', choices: ['qcow2', 'raw'], placeholder: 'FORMAT' },
    compress: { type: 'boolean', description: 'compress the qcow2 clusters (smaller file, slower reads)' },
    mirror: { type: 'string', description: 'package mirror URL (default: the distro\'s)', placeholder: 'URL' },
    name: { type: 'string', description: 'name in the image store (default: DISTRO-RELEASE)', placeholder: 'NAME' },
    output: { type: 'string', short: 'o', description: 'write the image to FILE instead of registering it', placeholder: 'FILE' },
    'no-cache': { type: 'boolean', description: 'do not use or fill the bootstrap and package caches' },
  },
  examples: [
    'sudo kumo image build --name my-debian',
    'sudo kumo image build --element vm --element cloud-init --element my-app --elements-path ./elements -o app.qcow2',
  ],
  async run(ctx, args) {
    const builder = await import('../../../builder/index.js');
    const { join } = await import('node:path');
    const paths = await ctx.paths();
    const distro = optString(args, 'distro') ?? 'debian';
    const output = optString(args, 'output');
    const elements = optList(args, 'element');
    const opts = {
      distro,
      ...(optString(args, 'release') ? { release: optString(args, 'release')! } : {}),
      ...(elements.length ? { elements } : {}),
      elementsPath: optList(args, 'elements-path'),
      ...(optString(args, 'size') ? { size: optString(args, 'size')! } : {}),
      format: (optString(args, 'format') ?? 'qcow2') as 'qcow2' | 'raw',
      compress: optBool(args, 'compress'),
      ...(optString(args, 'mirror') ? { mirror: optString(args, 'mirror')! } : {}),
      cacheDir: join(paths.cache, 'build'),
      noCache: optBool(args, 'no-cache'),
      onEvent: ctx.out.events(),
      signal: ctx.signal,
    };
    const name = optString(args, 'name') ?? `${distro}-${builder.resolveDistro(distro, optString(args, 'release')).release}`;
    let r: import('../../../builder/index.js').BuildResult;
    let registered: unknown;
    if (output) r = await builder.buildImage({ ...opts, output });
    else ({ build: r, image: registered } = await builder.buildAndRegisterImage(paths, { ...opts, name }));
    if (ctx.globals.json) ctx.out.jsonDoc({ ...r, packages: r.packages.length, registered });
    else {
      ctx.out.line(`built ${r.distro} ${r.release} in ${r.buildSeconds} s (${(r.sizeBytes / 1048576).toFixed(0)} MiB, ${r.packages.length} packages)`);
      ctx.out.line(output ? `image: ${r.path}` : `registered as ${name}`);
      ctx.out.line(`log: ${r.logFile}`);
    }
  },
};

export const buildCommands: CommandDef[] = [build];
