/** `kumo capture NAME --image NEW`: seal a copy of a stopped instance and store it as a new image. */
import { argString, optBool, optInt, optString, type CommandDef } from '../command.js';

const capture: CommandDef = {
  name: 'capture',
  summary: 'turn a prepared VM into a golden image (sealed, standalone, compressed)',
  description:
    'Boots a throw-away copy of the stopped instance, removes what makes it unique (machine-id, ssh host keys, cloud-init state, logs, ' +
    'shell histories, DHCP leases, tmp files, persistent net rules, package caches), powers it off and stores the result as a ' +
    'standalone compressed qcow2 image with its parent image, source instance and date. The instance itself is never changed. ' +
    'Instances launched from the new image get fresh identities. See docs/golden-images.md.',
  args: [{ name: 'name', required: true, description: 'the instance to capture' }],
  options: {
    image: { type: 'string', short: 'i', required: true, description: 'name of the new image', placeholder: 'NEW' },
    stop: { type: 'boolean', description: 'stop the instance first if it runs (instead of refusing)' },
    seal: { type: 'boolean', description: 'seal the copy (default; --no-seal stores the disk as it is, without booting it)' },
    timeout: { type: 'string', description: 'seconds to wait for the sealing copy to boot (default: the instance\'s)', placeholder: 'SEC' },
  },
  examples: ['kumo capture web --image web-golden', 'kumo capture --stop web --image web-golden', 'kumo launch web-golden --name web-2'],
  async run(ctx, args) {
    const image = optString(args, 'image')!;
    const timeoutSec = optInt(args, 'timeout', 1, 86400);
    const { captureInstance } = await import('../../golden/index.js');
    const { formatBytes, formatDuration } = await import('../output.js');
    const paths = await ctx.paths();
    const r = await captureInstance(paths, argString(args, 'name')!, {
      image,
      stop: optBool(args, 'stop'),
      seal: args.options.seal !== false,
      ...(timeoutSec !== undefined ? { timeoutSec } : {}),
      onEvent: ctx.out.events(),
      signal: ctx.signal,
    });
    ctx.out.finishProgress();
    ctx.out.data(r, () => {
      ctx.out.note(`captured ${r.from} as image ${image}${r.sealed ? ' (sealed)' : ' (not sealed)'}`);
      ctx.out.fields([
        ['image', image],
        ['id', r.image.id.slice(0, 16)],
        ['size', formatBytes(r.image.size)],
        ['virtual size', formatBytes(r.image.virtualSize)],
        ['sealed', r.sealed ? 'yes' : 'no'],
        ['time', formatDuration((r.timings.seal ?? 0) + r.timings.convert + r.timings.store)],
      ]);
      ctx.out.note(`launch instances from it with: kumo launch ${image} --name NAME`);
    });
  },
};
export default capture;
