/**
 * `kumo image warm IMAGE`: make (or refresh) the warm template of an image and machine shape; and
 * the templates' part of `kumo image list|info|rm`. Parse, call the library, render.
 */
import { argString, optBool, optString, type CommandContext, type CommandDef } from '../../command.js';

async function lib() {
  return import('../../../instance/index.js');
}

type Tpl = Awaited<ReturnType<Awaited<ReturnType<typeof lib>>['listTemplates']>>[number];

export async function templateRows(ctx: CommandContext): Promise<(Tpl & { usedBy: string[] })[]> {
  const l = await lib();
  const paths = await ctx.paths();
  const out = [];
  for (const t of await l.listTemplates(paths)) out.push({ ...t, usedBy: await l.templateUsers(paths, t.id) });
  return out;
}

export function printTemplates(ctx: CommandContext, rows: (Tpl & { usedBy: string[] })[], formatBytes: (n: number) => string): void {
  ctx.out.table(rows, [
    { header: 'TEMPLATE', get: (t) => t.id },
    { header: 'IMAGE', get: (t) => `${t.image.ref} ${t.image.id.slice(0, 12)}` },
    { header: 'SHAPE', get: (t) => `${t.key.cpus} cpu ${t.key.memoryMiB} MiB ${t.key.firmware}` },
    { header: 'QEMU', get: (t) => `${t.key.host.version} ${t.key.host.accel}` },
    { header: 'ON DISK', get: (t) => formatBytes(t.sizes.memoryOnDiskBytes + t.sizes.diskOnDiskBytes + t.sizes.stateBytes), align: 'right' },
    { header: 'CLONES', get: (t) => (t.usedBy.length ? t.usedBy.join(',') : '') },
    { header: 'CREATED', get: (t) => t.created.slice(0, 19).replace('T', ' ') },
  ]);
}

/** `kumo image info ID` for a template id (or prefix). */
export function printTemplate(ctx: CommandContext, t: Tpl, users: string[], formatBytes: (n: number) => string): void {
  ctx.out.fields([
    ['template', t.id],
    ['image', `${t.image.ref} (${t.image.id})`],
    ['shape', `${t.key.cpus} cpu, ${t.key.memoryMiB} MiB, disk ${formatBytes(t.key.diskBytes)}, ${t.key.firmware}, ${t.key.seedFormat}, user ${t.key.user}`],
    ['host', `${t.key.host.hypervisor} ${t.key.host.version}, ${t.key.host.machine}, ${t.key.host.accel}`],
    ['guest agent', t.agent ? 'yes (identity through the agent)' : 'no (identity over ssh)'],
    ['state', `${formatBytes(t.sizes.stateBytes)} (sha256 ${t.stateSha256.slice(0, 16)}…)`],
    ['memory file', `${formatBytes(t.sizes.memoryBytes)}, ${formatBytes(t.sizes.memoryOnDiskBytes)} on disk`],
    ['disk', `${formatBytes(t.sizes.diskOnDiskBytes)} on disk`],
    ['made', `${t.created} (boot ${Math.round(t.timings.bootMs / 100) / 10} s, save ${t.timings.saveMs} ms)`],
    ['clones', users.length ? users.join(', ') : 'none'],
  ]);
}

export const templateCommands: CommandDef[] = [
  {
    name: 'warm',
    summary: 'boot an image once and freeze it ready, so that launches of it restore in about a second',
    description:
      'Boots IMAGE with the given shape until ssh and cloud-init are ready, then saves the machine (its RAM in a file, its device state, its disk frozen) as a warm template in KUMO_HOME/templates. `kumo launch IMAGE` with the same shape then starts a clone of it instead of booting: restored with its own hostname, machine-id, ssh host key, clock and RNG. A current template is kept (--refresh remakes it, when no clone uses it). Templates for another QEMU version or machine type are never restored: such launches boot and say why.',
    args: [{ name: 'image', required: true, description: 'image alias, id, URL or file' }],
    options: {
      cpus: { type: 'string', short: 'c', description: 'virtual CPUs (default 2)', placeholder: 'N' },
      memory: { type: 'string', short: 'm', description: 'memory (default 1G)', placeholder: 'SIZE' },
      disk: { type: 'string', description: 'disk size of the clones (default: the image\u2019s)', placeholder: 'SIZE' },
      firmware: { type: 'string', description: 'bios (default) or uefi', choices: ['bios', 'uefi'], placeholder: 'FW' },
      'seed-format': { type: 'string', description: 'nocloud (default) or configdrive', choices: ['nocloud', 'configdrive'], placeholder: 'FORMAT' },
      user: { type: 'string', description: 'login user (default kumo)', placeholder: 'USER' },
      accel: { type: 'string', description: 'accelerator (default auto)', choices: ['auto', 'kvm', 'tcg'] },
      driver: { type: 'string', description: 'backend (default qemu; only the QEMU driver has warm templates)', placeholder: 'NAME' },
      timeout: { type: 'string', description: 'seconds to wait for the boot to be ready (default 600)', placeholder: 'SEC' },
      refresh: { type: 'boolean', description: 'remake the template even if a current one exists' },
    },
    examples: ['kumo image warm debian-12', 'kumo image warm debian-12 --cpus 1 --memory 512M', 'kumo launch debian-12   # restores the template'],
    async run(ctx, args) {
      const l = await lib();
      const { formatBytes } = await import('../../output.js');
      const paths = await ctx.paths();
      const input: Record<string, unknown> = { image: argString(args, 'image')! };
      for (const [flag, field] of [
        ['cpus', 'cpus'],
        ['memory', 'memory'],
        ['disk', 'disk'],
        ['firmware', 'firmware'],
        ['seed-format', 'seedFormat'],
        ['user', 'user'],
        ['accel', 'accel'],
        ['timeout', 'timeout'],
        ['driver', 'driver'],
      ] as const) {
        const v = optString(args, flag);
        if (v !== undefined) input[field] = v;
      }
      let r;
      try {
        r = await l.warmTemplate(paths, input as Parameters<typeof l.warmTemplate>[1], { refresh: optBool(args, 'refresh'), cwd: process.cwd(), onEvent: ctx.out.events(), signal: ctx.signal });
      } finally {
        ctx.out.finishProgress();
      }
      const t = r.template;
      ctx.out.data({ ...t, outcome: r.outcome }, () => {
        ctx.out.note(
          r.outcome === 'current'
            ? `template ${t.id} of ${t.image.ref} is current (--refresh remakes it)`
            : `template ${t.id} of ${t.image.ref} ${r.outcome}: ${t.key.cpus} cpu, ${t.key.memoryMiB} MiB; state ${formatBytes(t.sizes.stateBytes)}, memory file ${formatBytes(t.sizes.memoryOnDiskBytes)} on disk`,
        );
        ctx.out.line(t.id);
      });
    },
  },
];
