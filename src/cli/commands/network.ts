/**
 * `kumo network create|list|info|rm`: kumo's private networks between instances (docs/networks.md).
 * Parse, call src/network, render.
 */
import { argString, optString, type CommandDef } from '../command.js';

const lib = () => import('../../network/index.js');

const NAME_ARG = { name: 'name', required: true, description: 'network name', complete: 'network' as const };

const create: CommandDef = {
  name: 'create',
  summary: 'make a private network (a VDE switch kumo runs; instances join it with --network NAME)',
  description:
    'Instances launched with --network NAME get a second NIC on it with an address kumo gives from the subnet, and reach each other there by IP and by instance name. The subnet defaults to the first free /24 of 10.99.0.0/16; it may not overlap another network nor QEMU\u2019s user network 10.0.2.0/24.',
  args: [NAME_ARG],
  options: { subnet: { type: 'string', description: 'IPv4 subnet in CIDR form, /16 to /30 (default: a free /24 of 10.99.0.0/16)', placeholder: 'CIDR' } },
  examples: ['kumo network create backend', 'kumo network create lab --subnet 192.168.77.0/24', 'kumo launch debian-12 --name db --network backend'],
  async run(ctx, args) {
    const l = await lib();
    const subnet = optString(args, 'subnet');
    const n = await l.createNetwork(await ctx.paths(), argString(args, 'name')!, { ...(subnet !== undefined ? { subnet } : {}), signal: ctx.signal });
    ctx.out.data(n, () => {
      ctx.out.note(`network ${n.name}: ${n.subnet} (${n.addresses.total} addresses)`);
      ctx.out.line(n.name);
    });
  },
};

const list: CommandDef = {
  name: 'list',
  summary: 'list private networks, their members and addresses',
  examples: ['kumo network list', 'kumo network list --json'],
  async run(ctx) {
    const nets = await (await lib()).networkList(await ctx.paths());
    if (ctx.out.json) return ctx.out.jsonDoc(nets);
    if (!nets.length) return ctx.out.note("no networks (make one with 'kumo network create NAME')");
    ctx.out.table(nets, [
      { header: 'NAME', get: (n) => n.name },
      { header: 'SUBNET', get: (n) => n.subnet },
      { header: 'SWITCH', get: (n) => (n.switch.running ? `running (pid ${n.switch.pid})` : 'stopped') },
      { header: 'USED', get: (n) => `${n.addresses.used}/${n.addresses.total}`, align: 'right' },
      { header: 'MEMBERS', get: (n) => n.members.map((m) => `${m.instance}=${m.address}`).join(',') || undefined },
    ]);
  },
};

const info: CommandDef = {
  name: 'info',
  summary: 'show one private network',
  args: [NAME_ARG],
  async run(ctx, args) {
    const n = await (await lib()).networkInfo(await ctx.paths(), argString(args, 'name')!);
    ctx.out.data(n, () =>
      ctx.out.fields([
        ['name', n.name],
        ['subnet', `${n.subnet} (${n.addresses.used} of ${n.addresses.total} addresses used)`],
        ['switch', n.switch.running ? `running (pid ${n.switch.pid}), ${n.switch.socket}` : `stopped${n.switch.detail ? ` (${n.switch.detail})` : ''}; starts with its first instance`],
        ['members', n.members.map((m) => `${m.instance} ${m.address} (${m.mac})`).join(', ') || 'none'],
        ['created', n.created],
      ]),
    );
  },
};

const rm: CommandDef = {
  name: 'rm',
  summary: 'remove a private network no instance is on',
  args: [NAME_ARG],
  examples: ['kumo network rm backend'],
  async run(ctx, args) {
    const name = argString(args, 'name')!;
    await (await lib()).removeNetwork(await ctx.paths(), name, { signal: ctx.signal });
    ctx.out.data({ removed: name }, () => ctx.out.note(`network ${name} removed`));
  },
};

const network: CommandDef = {
  name: 'network',
  summary: 'private networks between VMs: create, list, info, rm',
  subcommands: [create, list, info, rm],
  examples: ['kumo network create backend', 'kumo launch debian-12 --name web --network backend', 'kumo network list', 'kumo network rm backend'],
};
export default network;
