/** `kumo list`: every instance with its real status (derived from the host, never from a stored field). */
import type { CommandDef } from '../command.js';

const list: CommandDef = {
  name: 'list',
  summary: 'list VMs and what state they are really in',
  usage: 'list [--json]',
  examples: ['kumo list', 'kumo list --json'],
  async run(ctx) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const all = await lib.listInstances(paths);
    const rows = all.map((s) => ({
      name: s.name,
      status: s.state,
      detail: s.detail,
      image: s.record?.image.ref,
      imageId: s.record?.image.id,
      driver: s.record?.driver,
      ssh: s.record && (s.state === 'running' || s.state === 'paused' || s.state === 'unknown') && s.record.ssh.port ? `127.0.0.1:${s.record.ssh.port}` : undefined,
      ports: s.record?.ports.map((p) => `${p.hostPort}->${p.guestPort}${p.proto === 'udp' ? '/udp' : ''}`) ?? [],
      cpus: s.record?.cpus,
      memoryMiB: s.record?.memoryMiB,
      pid: s.pid,
    }));
    if (ctx.out.json) return ctx.out.jsonDoc(rows);
    if (!rows.length) return ctx.out.note("no instances (create one with 'kumo launch')");
    ctx.out.table(rows, [
      { header: 'NAME', get: (r) => r.name },
      { header: 'STATUS', get: (r) => r.status },
      { header: 'IMAGE', get: (r) => r.image },
      { header: 'SSH', get: (r) => r.ssh },
      { header: 'PORTS', get: (r) => r.ports.join(',') || undefined },
      { header: 'CPUS', get: (r) => r.cpus, align: 'right' },
      { header: 'MEMORY', get: (r) => (r.memoryMiB !== undefined ? `${r.memoryMiB}M` : undefined), align: 'right' },
    ]);
    for (const r of rows) if (r.detail && r.status !== 'running' && r.status !== 'stopped') ctx.out.note(`${r.name}: ${r.detail}`);
  },
};
export default list;
