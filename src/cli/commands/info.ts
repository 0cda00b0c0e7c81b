/** `kumo info NAME`: the record and the real status of one instance. */
import { argString, type CommandDef } from '../command.js';

const info: CommandDef = {
  name: 'info',
  summary: 'show one VM: status, image, resources, ports, files',
  usage: 'info NAME [--json]',
  args: [{ name: 'name', required: true, description: 'instance name' }],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const { formatBytes } = await import('../output.js');
    const paths = await ctx.paths();
    const i = await lib.instanceInfo(paths, argString(args, 'name')!);
    const r = i.record;
    ctx.out.data(i, () =>
      ctx.out.fields([
        ['name', i.name],
        ['status', i.state + (i.pid ? ` (pid ${i.pid})` : '')],
        ['detail', i.detail],
        ['driver', r?.driver],
        ['image', r ? `${r.image.ref}${r.image.id ? ` (${r.image.id.slice(0, 12)})` : ''}` : undefined],
        ['base file', r?.image.path],
        ['cpus', r?.cpus],
        ['memory', r ? `${r.memoryMiB} MiB` : undefined],
        ['disk', r?.diskBytes ? `${formatBytes(r.diskBytes)} virtual, ${formatBytes(i.diskUsed ?? 0)} used` : undefined],
        ['accelerator', r?.lastStart?.accel ?? r?.accel],
        ['ssh', r && r.ssh.port ? `${r.ssh.user}@127.0.0.1:${r.ssh.port}` : r ? `${r.ssh.user} (port chosen at start)` : undefined],
        ['ports', r?.ports.map((p) => `${p.hostAddr}:${p.hostPort}->${p.guestPort}/${p.proto}`).join(', ')],
        ['instance-id', r?.instanceId],
        ['user-data', r?.userDataSource],
        ['created', r?.created],
        ['last start', r?.lastStart?.at],
        ['folder', i.dir],
        ['console log', i.serialLog],
      ]),
    );
  },
};
export default info;
