/**
 * `kumo list`: every instance with its real status (derived from the host, never from a stored
 * field), and the de-sync the backends report: instances whose machine is gone (a libvirt domain
 * removed behind kumo's back) and machines whose instance folder is gone (orphans; `kumo repair`).
 */
import { optBool, optList, optString, type CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';

/** The fields of --format, and the row value each reads. */
const FORMAT_FIELDS = {
  Name: 'name',
  Status: 'status',
  Detail: 'detail',
  Driver: 'driver',
  Image: 'image',
  ImageID: 'imageId',
  SSH: 'ssh',
  Ports: 'ports',
  CPUs: 'cpus',
  Memory: 'memoryMiB',
  PID: 'pid',
  Labels: 'labels',
  ExpiresAt: 'expiresAt',
  TTL: 'ttlRemainingSec',
} as const;

const list: CommandDef = {
  name: 'list',
  summary: 'list VMs and what state they are really in (and libvirt domains out of step with them)',
  description:
    "STATUS comes from the host each time. An instance whose machine is gone (its libvirt domain undefined behind kumo's back) is marked 'de-sync', with what sets it straight; a machine of this kumo home whose instance folder is gone is listed with status 'orphan' (remove it with 'kumo repair NAME').",
  options: {
    label: { type: 'string', short: 'l', multiple: true, description: 'only instances with this label (KEY=VALUE), or with this key (KEY); several must all match', placeholder: 'KEY[=VALUE]' },
    format: { type: 'string', description: `one line per instance from a template: ${Object.keys(FORMAT_FIELDS).map((f) => `{{.${f}}}`).join(' ')}, {{json .}}; \\t and \\n`, placeholder: 'TEMPLATE' },
    quiet: { type: 'boolean', short: 'q', description: 'print only the names, one a line' },
  },
  examples: ['kumo list', 'kumo list --json', 'kumo list --label team=ci --label owner', "kumo list --format '{{.Name}} {{.Status}} {{.SSH}}'", 'kumo list -q | xargs kumo stop'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const { formatRemaining } = await import('../../config/labels.js');
    const paths = await ctx.paths();
    const label = optList(args, 'label');
    const format = optString(args, 'format');
    const quiet = optBool(args, 'quiet');
    if (format !== undefined && quiet) throw new UsageError('--format and --quiet cannot be combined', { hint: "--quiet is --format '{{.Name}}'" });
    if ((format !== undefined || quiet) && ctx.out.json) throw new UsageError(`--json cannot be combined with ${quiet ? '--quiet' : '--format'}`, { hint: "give one; --format '{{json .}}' prints one JSON object a line" });
    const { parseTemplate } = await import('../format.js');
    // checked before anything is listed
    const template = parseTemplate<Record<string, unknown>>(quiet ? '{{.Name}}' : (format ?? '{{.Name}}'), Object.keys(FORMAT_FIELDS), (row, f) => row[FORMAT_FIELDS[f as keyof typeof FORMAT_FIELDS]]);
    const now = Date.now();
    // with a label selector, orphans (no record, no labels) never match
    const [all, orphans] = await Promise.all([lib.listInstances(paths, { label }), label.length ? [] : lib.findOrphans(paths)]);
    const rows = all.map((s) => ({
      name: s.name,
      status: s.state as string,
      detail: s.detail,
      desync: s.desync,
      image: s.record?.image.ref,
      imageId: s.record?.image.id,
      driver: s.record?.driver,
      connect: typeof s.record?.driverOptions?.connect === 'string' ? s.record.driverOptions.connect : undefined,
      ssh: s.ssh ? `${s.ssh.host}:${s.ssh.port}` : undefined,
      ports: s.record?.ports.map((p) => `${p.hostPort}->${p.guestPort}${p.proto === 'udp' ? '/udp' : ''}`) ?? [],
      cpus: s.record?.cpus,
      memoryMiB: s.record?.memoryMiB,
      pid: s.pid,
      labels: s.record?.labels ?? {},
      expiresAt: s.record?.expiresAt,
      ttlRemainingSec: s.record?.expiresAt ? Math.max(0, Math.round((Date.parse(s.record.expiresAt) - now) / 1000)) : undefined,
      networks: (s.record?.networks ?? []).map((n) => ({ network: n.network, address: n.address })),
    }));
    for (const o of orphans) {
      rows.push({
        name: o.instance,
        status: 'orphan',
        detail: `${o.where} is ${o.state} but its instance folder ${o.dir} is gone`,
        desync: `remove it with: kumo repair ${o.instance}${o.state === 'stopped' || o.state === 'crashed' ? '' : ' --force'}`,
        image: undefined,
        imageId: undefined,
        driver: o.driver,
        connect: typeof o.driverOptions.connect === 'string' ? o.driverOptions.connect : undefined,
        ssh: undefined,
        ports: [],
        cpus: undefined,
        memoryMiB: undefined,
        pid: undefined,
        labels: {},
        expiresAt: undefined,
        ttlRemainingSec: undefined,
        networks: [],
      });
    }
    if (ctx.out.json) return ctx.out.jsonDoc(rows);
    if (format !== undefined || quiet) {
      for (const r of rows) ctx.out.line(template.render(r));
      return;
    }
    if (!rows.length) return ctx.out.note(label.length ? `no instances with label ${label.join(' and ')}` : "no instances (create one with 'kumo launch')");
    ctx.out.table(rows, [
      { header: 'NAME', get: (r) => r.name },
      { header: 'STATUS', get: (r) => (r.desync && r.status !== 'orphan' ? `${r.status} (de-sync)` : r.status) },
      { header: 'DRIVER', get: (r) => (r.driver && r.connect ? `${r.driver} ${r.connect}` : r.driver) },
      { header: 'IMAGE', get: (r) => r.image },
      { header: 'SSH', get: (r) => r.ssh },
      { header: 'PORTS', get: (r) => r.ports.join(',') || undefined },
      { header: 'CPUS', get: (r) => r.cpus, align: 'right' },
      { header: 'MEMORY', get: (r) => (r.memoryMiB !== undefined ? `${r.memoryMiB}M` : undefined), align: 'right' },
      ...(rows.some((r) => r.networks.length) ? [{ header: 'NETWORKS', get: (r: (typeof rows)[number]) => r.networks.map((n) => `${n.network}=${n.address}`).join(',') || undefined }] : []),
      ...(rows.some((r) => r.expiresAt) ? [{ header: 'TTL', get: (r: (typeof rows)[number]) => (r.expiresAt ? formatRemaining(Date.parse(r.expiresAt) - now) : undefined) }] : []),
      ...(rows.some((r) => Object.keys(r.labels).length)
        ? [{ header: 'LABELS', get: (r: (typeof rows)[number]) => Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(',') || undefined }]
        : []),
    ]);
    for (const r of rows) {
      if (r.desync) ctx.out.note(`${r.name}: ${r.detail ? `${r.detail}; ` : ''}${r.desync}`);
      else if (r.detail && r.status !== 'running' && r.status !== 'stopped') ctx.out.note(`${r.name}: ${r.detail}`);
    }
  },
};
export default list;
