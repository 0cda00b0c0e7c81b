/** `kumo port add|rm|list NAME ...`: port forwards, changed live on a running VM and kept in instance.json. */
import { argString, type CommandDef } from '../command.js';
import { INSTANCE_ARG } from '../flags.js';

const add: CommandDef = {
  name: 'add',
  summary: 'forward a host port to the VM (at once if it runs; kept for later starts)',
  args: [
    INSTANCE_ARG,
    { name: 'forward', required: true, placeholder: '[ADDR:]HOST:GUEST[/udp]', description: 'HOST:GUEST, e.g. 8080:80; HOST 0 picks a free host port' },
  ],
  examples: ['kumo port add web 8080:80', 'kumo port add web 0:80', 'kumo port add web 0.0.0.0:8443:443'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    const f = await lib.addPort(paths, name, argString(args, 'forward')!, { signal: ctx.signal });
    ctx.out.data(f, () => ctx.out.note(`${name}: ${f.hostAddr}:${f.hostPort || '(picked at next start)'} -> guest ${f.guestPort}/${f.proto}${f.dynamic ? ' (dynamic)' : ''}`));
  },
};

const rm: CommandDef = {
  name: 'rm',
  summary: 'remove a port forward',
  args: [
    INSTANCE_ARG,
    { name: 'forward', required: true, placeholder: 'HOST[/udp]', description: 'the host port (or HOST:GUEST; 0:GUEST for a dynamic one)' },
  ],
  examples: ['kumo port rm web 8080'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const name = argString(args, 'name')!;
    const f = await lib.removePort(paths, name, argString(args, 'forward')!, { signal: ctx.signal });
    ctx.out.data({ removed: f }, () => ctx.out.note(`${name}: removed ${f.hostAddr}:${f.hostPort} -> ${f.guestPort}/${f.proto}`));
  },
};

const list: CommandDef = {
  name: 'list',
  summary: "list a VM's port forwards (ssh included)",
  args: [INSTANCE_ARG],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const l = await lib.listPorts(paths, argString(args, 'name')!);
    const rows = [{ ...l.ssh, what: 'ssh' }, ...l.ports.map((p) => ({ ...p, what: '' }))];
    ctx.out.data(l, () =>
      ctx.out.table(rows, [
        { header: 'HOST', get: (r) => `${r.hostAddr}:${r.hostPort || '(at start)'}` },
        { header: 'GUEST', get: (r) => r.guestPort },
        { header: 'PROTO', get: (r) => r.proto },
        { header: 'NOTE', get: (r) => r.what || (r.dynamic ? (l.running ? 'dynamic' : 'dynamic (picked again at start if taken)') : undefined) },
      ]),
    );
  },
};

const port: CommandDef = {
  name: 'port',
  summary: 'add, remove and list port forwards of a VM',
  subcommands: [add, rm, list],
  examples: ['kumo port add web 8080:80', 'kumo port list web', 'kumo port rm web 8080'],
};
export default port;
