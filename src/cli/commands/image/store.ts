/**
 * `kumo image pull|list|info|rm|prune|import|sync`: the image store. Parse, call src/image, render.
 */
import { argList, argString, optBool, optString, type CommandDef, type CommandContext } from '../../command.js';
import { UsageError } from '../../../core/errors.js';

async function lib() {
  bytes = (await import('../../output.js')).formatBytes;
  return import('../../../image/index.js');
}

function short(id: string): string {
  return id.slice(0, 12);
}

let bytes: (n: number) => string = String;

type Rec = Awaited<ReturnType<Awaited<ReturnType<typeof lib>>['listImages']>>[number];

function label(r: Rec): string {
  return r.name ?? r.aliases[0] ?? '<none>';
}

function printRecord(ctx: CommandContext, r: Rec, users?: string[]): void {
  ctx.out.fields([
    ['id', r.id],
    ['name', r.name],
    ['aliases', r.aliases.join(', ')],
    ['path', r.path],
    ['format', r.format],
    ['virtual size', `${bytes(r.virtualSize)} (${r.virtualSize} bytes)`],
    ['file size', `${bytes(r.size)} (${r.size} bytes)`],
    ['digest', r.digest],
    ['arch', r.arch],
    ['version', r.version],
    ['source', r.source.kind + (r.source.url ? ` ${String(r.source.url)}` : r.source.file ? ` ${String(r.source.file)}` : r.source.path ? ` ${String(r.source.path)}` : '')],
    ['verified with', typeof r.source.checksum === 'string' ? `${r.source.checksum.slice(0, 24)}… (from ${String(r.source.checksumFrom ?? 'user')})` : undefined],
    ['verified by', typeof r.source.verifiedBy === 'string' ? (r.source.verifiedBy === 'signature' ? `signature (key ${String(r.source.signedBy ?? '?')})` : r.source.verifiedBy) : undefined],
    ['fetched', r.fetchedAt],
    ['superseded by', r.supersededBy ? short(r.supersededBy) : undefined],
    ['used by', users ? (users.length ? users.join(', ') : 'no instance') : undefined],
  ]);
}

/** A template named by its id (or a prefix of 4+ hex digits) when no stored image has that name or id. */
async function templateNamed(ctx: CommandContext, ref: string) {
  if (!/^[0-9a-f]{4,16}$/.test(ref)) return undefined;
  const l = await lib();
  const paths = await ctx.paths();
  const asImage = await l.getImage(paths, ref).then(
    () => true,
    () => false,
  );
  if (asImage) return undefined;
  const inst = await import('../../../instance/index.js');
  return inst.findTemplate(paths, ref);
}

const pull: CommandDef = {
  name: 'pull',
  summary: 'download and verify an image (alias, URL or file) into the store',
  description:
    'REF is an alias (debian-12, ubuntu:24.04, fedora:41, ...), an http(s) URL or a local file. Every download is verified: against the vendor checksum for aliases, a checksum file beside a URL, or --checksum. A stored image is not downloaded again (use --refresh, or `kumo image sync`, for newer versions).',
  args: [{ name: 'refs', required: true, variadic: true, placeholder: 'REF', description: 'aliases, URLs or files (several are pulled at once, each with its own progress line)' }],
  options: {
    checksum: { type: 'string', description: 'expected checksum of the download', placeholder: 'sha256:HEX' },
    arch: { type: 'string', description: 'architecture (default: the host\u2019s)', choices: ['x86_64', 'aarch64', 'amd64', 'arm64'] },
    refresh: { type: 'boolean', description: 'ask the vendor for the newest version even if one is stored' },
  },
  examples: ['kumo image pull debian-12', 'kumo image pull debian-12 ubuntu:24.04   # both at once', 'kumo image pull ubuntu:24.04 --arch aarch64', 'kumo image pull https://example.org/disk.qcow2 --checksum sha256:0123...'],
  async run(ctx, args) {
    const { ensureImage } = await lib();
    const paths = await ctx.paths();
    const checksum = optString(args, 'checksum');
    const arch = optString(args, 'arch');
    const refs = argList(args, 'refs');
    if (checksum && refs.length > 1) throw new UsageError('--checksum names the checksum of one download, and several images were given', { hint: 'pull them one by one, or put a SHA256SUMS file beside the URLs' });
    // several at once: each its own task (a live line of its own on a terminal)
    const settled = await Promise.allSettled(
      refs.map((ref) =>
        ensureImage(paths, ref, {
          ...(checksum ? { checksum } : {}),
          ...(arch ? { arch } : {}),
          refresh: optBool(args, 'refresh'),
          onEvent: ctx.out.events(refs.length > 1 ? ref : undefined),
          signal: ctx.signal,
        }),
      ),
    );
    ctx.out.finishProgress();
    const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [{ ref: refs[i]!, error: r.reason as Error }] : []));
    const recs = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (failed.length === 1 && refs.length === 1) throw failed[0]!.error;
    for (const f of failed) ctx.out.note(`${f.ref}: ${f.error.message}`);
    ctx.out.data(refs.length === 1 ? recs[0] : recs, () => {
      for (const rec of recs) {
        ctx.out.note(`${label(rec)} ${short(rec.id)} ${rec.format} ${bytes(rec.virtualSize)} (${rec.arch})`);
        ctx.out.line(rec.path);
      }
    });
    if (failed.length) throw failed[0]!.error;
  },
};

const list: CommandDef = {
  name: 'list',
  summary: 'list stored images and warm templates (or, with --catalog, the aliases kumo knows)',
  options: {
    catalog: { type: 'boolean', description: 'list the catalog aliases instead of the store' },
    templates: { type: 'boolean', description: 'list only the warm templates (kumo image warm)' },
  },
  async run(ctx, args) {
    const l = await lib();
    const paths = await ctx.paths();
    if (optBool(args, 'catalog')) {
      const cat = await l.loadCatalog(paths);
      const rows = Object.values(cat.aliases).map((a) => ({ alias: a.name, names: a.names, os: a.os, version: a.version, arches: a.arches, source: a.source, kind: cat.sources[a.source]?.kind, base: cat.sources[a.source]?.base }));
      ctx.out.data(rows, () =>
        ctx.out.table(rows, [
          { header: 'ALIAS', get: (r) => r.alias },
          { header: 'ALSO', get: (r) => r.names.join(' ') },
          { header: 'ARCH', get: (r) => r.arches.join(',') },
          { header: 'SOURCE', get: (r) => `${r.kind} ${r.base}` },
        ]),
      );
      return;
    }
    const t = await import('./templates.js');
    const tpls = await t.templateRows(ctx);
    if (optBool(args, 'templates')) {
      ctx.out.data(tpls, () => (tpls.length ? t.printTemplates(ctx, tpls, bytes) : ctx.out.note('no warm templates (kumo image warm IMAGE makes one)')));
      return;
    }
    const recs = await l.listImages(paths);
    const users = await l.imageUsers(paths);
    const rows = recs.map((r) => ({ ...r, usedBy: users.get(r.id) ?? [] }));
    ctx.out.data(rows, () => {
      printImages(ctx, rows);
      if (tpls.length) {
        ctx.out.line('');
        t.printTemplates(ctx, tpls, bytes);
      }
    });
  },
};

function printImages(ctx: CommandContext, rows: (Rec & { usedBy: string[] })[]): void {
      ctx.out.table(rows, [
        { header: 'NAME', get: (r) => label(r) },
        { header: 'ID', get: (r) => short(r.id) },
        { header: 'ARCH', get: (r) => r.arch },
        { header: 'FORMAT', get: (r) => r.format },
        { header: 'VIRTUAL', get: (r) => bytes(r.virtualSize), align: 'right' },
        { header: 'SIZE', get: (r) => bytes(r.size), align: 'right' },
        { header: 'VERSION', get: (r) => r.version },
        { header: 'SOURCE', get: (r) => r.source.kind },
        { header: 'USED BY', get: (r) => (r.usedBy.length ? r.usedBy.join(',') : r.supersededBy ? '(superseded)' : '') },
        { header: 'FETCHED', get: (r) => r.fetchedAt.slice(0, 19).replace('T', ' ') },
      ]);
}

const info: CommandDef = {
  name: 'info',
  summary: 'show one stored image (metadata, digest, source, the instances using it) or warm template',
  args: [{ name: 'ref', required: true, description: 'name, alias, id (or prefix), URL or file; or a template id' }],
  async run(ctx, args) {
    const l = await lib();
    const paths = await ctx.paths();
    const ref = argString(args, 'ref')!;
    const tpl = await templateNamed(ctx, ref);
    if (tpl) {
      const inst = await import('../../../instance/index.js');
      const users = await inst.templateUsers(paths, tpl.id);
      const t = await import('./templates.js');
      ctx.out.data({ ...tpl, usedBy: users }, () => t.printTemplate(ctx, tpl, users, bytes));
      return;
    }
    const rec = await l.getImage(paths, ref);
    const users = (await l.imageUsers(paths)).get(rec.id) ?? [];
    ctx.out.data({ ...rec, usedBy: users }, () => printRecord(ctx, rec, users));
  },
};

const rm: CommandDef = {
  name: 'rm',
  summary: 'remove stored images or warm templates (refuses one any instance still uses)',
  args: [{ name: 'refs', placeholder: 'REF', required: true, variadic: true, description: 'names, aliases or ids; template ids' }],
  async run(ctx, args) {
    const l = await lib();
    const paths = await ctx.paths();
    const removed: string[] = [];
    for (const ref of argList(args, 'refs')) {
      const tpl = await templateNamed(ctx, ref);
      if (tpl) {
        const inst = await import('../../../instance/index.js');
        await inst.removeTemplate(paths, tpl.id, { signal: ctx.signal });
        removed.push(tpl.id);
        if (!ctx.out.json) ctx.out.note(`removed template ${tpl.id}`);
        continue;
      }
      const rec = await l.getImage(paths, ref);
      await l.removeImage(paths, rec.id);
      removed.push(rec.id);
      if (!ctx.out.json) ctx.out.note(`removed ${label(rec)} ${short(rec.id)}`);
    }
    if (ctx.out.json) ctx.out.jsonDoc({ removed });
  },
};

const prune: CommandDef = {
  name: 'prune',
  summary: 'remove images and warm templates no instance uses (superseded, stale and downloaded ones) and repair the store',
  description:
    'Removes every unused image that can be fetched again (pulled by alias or URL), superseded versions (left by `image sync` or a rebuild under the same name) and unnamed ones. Built, imported and captured images are kept unless --all. Warm templates no clone uses go first when they can no longer serve a launch (another QEMU version or machine type, a superseded or missing base image; with --all, every unused one). Also repairs the store: metadata without data, data without metadata (kept, with new metadata, when an instance uses it) and leftovers of interrupted downloads.',
  options: {
    'dry-run': { type: 'boolean', description: 'show what would be removed, remove nothing' },
    all: { type: 'boolean', description: 'also remove unused built, imported and captured images' },
  },
  async run(ctx, args) {
    const { pruneImages } = await lib();
    const paths = await ctx.paths();
    const dry = optBool(args, 'dry-run');
    // Templates first: a stale one keeps its base image in use.
    const inst = await import('../../../instance/index.js');
    const t = await inst.pruneTemplates(paths, { dryRun: dry, all: optBool(args, 'all'), signal: ctx.signal });
    const r = await pruneImages(paths, { dryRun: dry, all: optBool(args, 'all') });
    ctx.out.data({ ...r, templates: t }, () => {
      const verb = dry ? 'would remove' : 'removed';
      for (const x of t.removed) ctx.out.line(`${verb} template ${x.id} (${x.why})`);
      for (const x of r.removed) ctx.out.line(`${verb} ${label(x)} ${short(x.id)} (${bytes(x.size)})`);
      for (const x of r.repaired) ctx.out.line(`${dry ? 'would repair' : 'repaired'}: ${x}`);
      for (const u of r.unreadable ?? []) ctx.out.warn(`cannot read the disk chain of ${u.disk} (${u.owner}): ${u.error}; no image was removed`);
      const freed = r.removed.reduce((s, x) => s + x.size, 0);
      ctx.out.note(`${r.removed.length} image(s) ${verb}, ${bytes(freed)}${r.kept?.length ? `; ${r.kept.length} unused named image(s) kept (--all removes them)` : ''}`);
    });
  },
};

const imp: CommandDef = {
  name: 'import',
  summary: 'add a local disk image to the store under a name (vmdk/vhd/vhdx are converted to qcow2)',
  args: [{ name: 'file', required: true, description: 'a qcow2, raw, vmdk, vhd or vhdx image, optionally xz/gzip/zstd-compressed' }],
  options: {
    name: { type: 'string', short: 'n', required: true, description: 'the image name', placeholder: 'NAME' },
    move: { type: 'boolean', description: 'move the file into the store instead of copying it' },
    checksum: { type: 'string', description: 'verify the file first', placeholder: 'sha256:HEX' },
    arch: { type: 'string', description: 'architecture of the image (default: the host\u2019s)', choices: ['x86_64', 'aarch64', 'amd64', 'arm64'] },
  },
  examples: ['kumo image import ./golden.qcow2 --name golden', 'kumo image import appliance.vmdk --name appliance'],
  async run(ctx, args) {
    const { importImage } = await lib();
    const name = optString(args, 'name')!;
    const paths = await ctx.paths();
    const checksum = optString(args, 'checksum');
    const arch = optString(args, 'arch');
    const rec = await importImage(paths, argString(args, 'file')!, {
      name,
      move: optBool(args, 'move'),
      ...(checksum ? { checksum } : {}),
      ...(arch ? { arch } : {}),
      onEvent: ctx.out.events(),
      signal: ctx.signal,
    });
    ctx.out.finishProgress();
    ctx.out.data(rec, () => {
      ctx.out.note(`imported ${label(rec)} ${short(rec.id)} ${rec.format} ${bytes(rec.virtualSize)}`);
      ctx.out.line(rec.path);
    });
  },
};

const sync: CommandDef = {
  name: 'sync',
  summary: 'fetch newer versions of the stored aliases (old versions stay until unused and pruned)',
  args: [{ name: 'aliases', placeholder: 'ALIAS', variadic: true, description: 'only these aliases (default: every stored alias)' }],
  options: { 'dry-run': { type: 'boolean', description: 'only report which aliases have newer versions' } },
  async run(ctx, args) {
    const { syncImages } = await lib();
    const paths = await ctx.paths();
    const r = await syncImages(paths, { refs: argList(args, 'aliases'), dryRun: optBool(args, 'dry-run'), onEvent: ctx.out.events(), signal: ctx.signal });
    ctx.out.finishProgress();
    const doc = { ...r, failed: r.failed.map((f) => ({ alias: f.alias, arch: f.arch, error: f.error.toJSON() })) };
    ctx.out.data(doc, () => {
      for (const u of r.updated) ctx.out.line(`updated ${u.alias} (${u.arch}): ${u.from ? short(u.from) : '(none)'} -> ${short(u.to)}${u.version ? ` ${u.version}` : ''}`);
      for (const a of r.available ?? []) ctx.out.line(`newer ${a.alias} (${a.arch}): ${a.url}${a.version ? ` ${a.version}` : ''}`);
      for (const c of r.current) ctx.out.line(`current ${c.alias} (${c.arch}) ${short(c.id)}`);
      for (const f of r.failed) ctx.out.line(`failed ${f.alias} (${f.arch}): ${f.error.message}`);
      if (!r.updated.length && !r.current.length && !r.failed.length && !(r.available ?? []).length) ctx.out.note('no stored aliases to sync');
    });
    return r.failed.length ? 7 : 0;
  },
};

export const storeCommands: CommandDef[] = [pull, list, info, rm, prune, imp, sync];
