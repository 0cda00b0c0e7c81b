/** `kumo snapshot create|list|restore|delete NAME [SNAP]`: qcow2 internal snapshots of a VM's disk. */
import { argString, type CommandDef } from '../command.js';

const nameArg = { name: 'name', required: true, description: 'the instance' };
const snapArg = { name: 'snapshot', required: true, placeholder: 'SNAP', description: 'the snapshot name' };

const create: CommandDef = {
  name: 'create',
  summary: 'take a snapshot (disk only when stopped; disk and memory while running)',
  args: [nameArg, snapArg],
  examples: ['kumo snapshot create web before-upgrade'],
  async run(ctx, args) {
    const g = await import('../../instance/index.js');
    const r = await g.createSnapshot(await ctx.paths(), argString(args, 'name')!, argString(args, 'snapshot')!, { signal: ctx.signal });
    ctx.out.data(r, () => ctx.out.note(`${r.name}: snapshot ${r.snapshot} created${r.live ? ' (disk and memory)' : ' (disk)'}`));
  },
};

const list: CommandDef = {
  name: 'list',
  summary: "list an instance's snapshots",
  args: [nameArg],
  async run(ctx, args) {
    const g = await import('../../instance/index.js');
    const { formatBytes } = await import('../output.js');
    const snaps = await g.listSnapshots(await ctx.paths(), argString(args, 'name')!);
    if (ctx.out.json) return ctx.out.jsonDoc(snaps);
    ctx.out.table(snaps, [
      { header: 'NAME', get: (s) => s.name },
      { header: 'CREATED', get: (s) => s.created },
      { header: 'MEMORY', get: (s) => (s.vmStateSize ? formatBytes(s.vmStateSize) : '-'), align: 'right' },
    ]);
  },
};

const restore: CommandDef = {
  name: 'restore',
  summary: 'go back to a snapshot (changes made since are lost)',
  args: [nameArg, snapArg],
  async run(ctx, args) {
    const g = await import('../../instance/index.js');
    const r = await g.restoreSnapshot(await ctx.paths(), argString(args, 'name')!, argString(args, 'snapshot')!, { signal: ctx.signal });
    if (r.warning) ctx.out.warn(r.warning);
    ctx.out.data(r, () => ctx.out.note(`${r.name}: restored snapshot ${r.snapshot}${r.guest ? ` (clock stepped, RNG reseeded through the ${r.guest.via === 'agent' ? 'guest agent' : 'ssh'})` : ''}`));
  },
};

const del: CommandDef = {
  name: 'delete',
  summary: 'delete a snapshot',
  args: [nameArg, snapArg],
  async run(ctx, args) {
    const g = await import('../../instance/index.js');
    const r = await g.deleteSnapshot(await ctx.paths(), argString(args, 'name')!, argString(args, 'snapshot')!, { signal: ctx.signal });
    ctx.out.data(r, () => ctx.out.note(`${r.name}: deleted snapshot ${r.snapshot}`));
  },
};

const snapshot: CommandDef = {
  name: 'snapshot',
  summary: "take, list, restore and delete snapshots of a VM's disk",
  description: 'qcow2 internal snapshots of the instance disk. Stopped: disk only. Running (QEMU): disk and memory, and restore resumes the machine there. A disk-only snapshot is restored with the instance stopped.',
  subcommands: [create, list, restore, del],
  examples: ['kumo snapshot create web s1', 'kumo snapshot list web', 'kumo snapshot restore web s1', 'kumo snapshot delete web s1'],
};
export default snapshot;
