/** `kumo info NAME`: the record and the real status of one instance. */
import { argString, type CommandDef } from '../command.js';
import { INSTANCE_ARG } from '../flags.js';

const info: CommandDef = {
  name: 'info',
  summary: 'show one VM: status, image, resources, ports, files',
  args: [INSTANCE_ARG],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const { formatBytes } = await import('../output.js');
    const { formatRemaining } = await import('../../config/labels.js');
    const paths = await ctx.paths();
    const i = await lib.instanceInfo(paths, argString(args, 'name')!);
    const r = i.record;
    ctx.out.data(i, () =>
      ctx.out.fields([
        ['name', i.name],
        ['status', i.state + (i.pid ? ` (pid ${i.pid})` : '')],
        ['detail', i.detail],
        ['de-sync', i.desync],
        ['driver', r ? `${r.driver}${r.driverOptions && Object.keys(r.driverOptions).length ? ` (${Object.entries(r.driverOptions).map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')})` : ''}` : undefined],
        ['image', r ? `${r.image.ref}${r.image.id ? ` (${r.image.id.slice(0, 12)})` : ''}` : undefined],
        ['base file', r?.image.path],
        ['cpus', r?.cpus],
        ['memory', r ? `${r.memoryMiB} MiB` : undefined],
        ['disk', r?.diskBytes ? `${formatBytes(r.diskBytes)} virtual, ${formatBytes(i.diskUsed ?? 0)} used` : undefined],
        ['accelerator', r?.lastStart?.accel ?? r?.accel],
        ['ssh', r ? (i.ssh ? `${r.ssh.user}@${i.ssh.host}:${i.ssh.port}` : r.ssh.port && r.driver === 'qemu' ? `${r.ssh.user}@127.0.0.1:${r.ssh.port} (when running)` : `${r.ssh.user} (address known once running)`) : undefined],
        ['ports', r?.ports.map((p) => portWords(p, i.state === 'running' || i.state === 'paused')).join(', ')],
        ['mounts', r?.mounts?.length ? r.mounts.map((m) => `${m.host} -> ${m.guest}${m.readOnly ? ' (ro)' : ''} [${m.type}]`).join(', ') : undefined],
        ['networks', r?.networks?.length ? r.networks.map((n) => `${n.network} ${n.address}/${n.prefix} (${n.mac})`).join(', ') : undefined],
        ['labels', r?.labels && Object.keys(r.labels).length ? Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(', ') : undefined],
        ['expires', r?.expiresAt ? `${r.expiresAt} (${formatRemaining(Date.parse(r.expiresAt) - Date.now())}${Date.parse(r.expiresAt) > Date.now() ? ' left' : ''})` : undefined],
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

/** A forward in words; a dynamic one says so, and while stopped that its port is picked again at start if taken. */
function portWords(p: { hostAddr: string; hostPort: number; guestPort: number; proto: string; dynamic?: boolean }, running: boolean): string {
  const host = p.hostPort ? String(p.hostPort) : '(picked at start)';
  const note = p.dynamic ? (running || !p.hostPort ? ' (dynamic)' : ' (dynamic; last used, kept at start if free)') : '';
  return `${p.hostAddr}:${host}->${p.guestPort}/${p.proto}${note}`;
}
