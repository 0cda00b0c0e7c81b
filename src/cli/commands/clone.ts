/** `kumo clone SRC NEW`: a new instance from a stopped instance's current disk, with its own identity. */
import { argString, optBool, type CommandDef } from '../command.js';

const clone: CommandDef = {
  name: 'clone',
  summary: "copy a stopped VM into a new one with its own identity",
  description:
    "NEW starts from SRC's disk as it is now (a copy of SRC's overlay on the same base), with a new cloud-init instance-id, seed, " +
    'ssh host keys, MAC address and ssh port. Port forwards and user-data of SRC are not copied. SRC must be stopped (or use --stop). ' +
    "For many clean copies, 'kumo capture' SRC into an image instead.",
  args: [
    { name: 'src', required: true, placeholder: 'SRC', description: 'the instance to copy' },
    { name: 'new', required: true, description: 'name of the new instance' },
  ],
  options: { stop: { type: 'boolean', description: 'stop SRC first if it runs (instead of refusing)' } },
  examples: ['kumo clone web web-2 && kumo start web-2'],
  async run(ctx, args) {
    const { cloneInstance } = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const r = await cloneInstance(paths, argString(args, 'src')!, argString(args, 'new')!, { stop: optBool(args, 'stop'), onEvent: ctx.out.events(), signal: ctx.signal });
    ctx.out.finishProgress();
    ctx.out.data({ name: r.record.name, from: r.from, instanceId: r.record.instanceId, mac: r.record.mac, droppedPorts: r.droppedPorts }, () => {
      ctx.out.note(`${r.record.name} cloned from ${r.from} (instance-id ${r.record.instanceId}, MAC ${r.record.mac}); start it with: kumo start ${r.record.name}`);
    });
  },
};
export default clone;
