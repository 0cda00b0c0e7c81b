/**
 * Fuzz target: the ISO 9660 writer (src/seed/iso.ts buildIso) on hostile file sets: names with
 * '/', '.', '..', NUL, lone surrogates, 255+ bytes, duplicates, a file that is also a folder, deep
 * trees, folders of hundreds of entries (directory records over several blocks), wild modes,
 * volume labels and timestamps. Every 50th accepted case (and every case of the round-trip kind)
 * is written out and read back by libarchive (bsdtar; xorriso for images without Joliet): the names and contents must round-trip.
 */
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../../src/core/exec.js';
import { buildIso, type IsoFile } from '../../../../src/seed/index.js';
import { bytes, FuzzPropertyError, int, pick, wildNumber, wildString, type FuzzTarget, type Rng } from '../harness.js';

interface Ctx {
  dir: string;
  /** Cases buildIso accepted so far: every 50th of them is read back. */
  accepted: number;
  checked: number;
}

const SAFE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+=~ äöé中';

function safeName(r: Rng): string {
  let s = '';
  for (let i = 1 + int(r, r() < 0.05 ? 240 : 16); i > 0; i--) s += pick(r, [...SAFE]);
  return s === '.' || s === '..' ? s + 'x' : s;
}

function hostileName(r: Rng): string {
  return pick(r, ['', '.', '..', 'a/', '/a', 'a//b', 'a\0b', '\ud800', 'x'.repeat(256), 'é'.repeat(128), wildString(r, 12), 'user-data', 'USER-DATA', 'a;1', ' ', '\n']);
}

function fileSet(r: Rng, hostile: boolean): IsoFile[] {
  const files: IsoFile[] = [];
  const dirs = [''];
  const n = r() < 0.05 ? 200 + int(r, 400) : 1 + int(r, 12);
  for (let i = 0; i < n; i++) {
    let parent = pick(r, dirs);
    if (r() < 0.25 && parent.split('/').length < 12) {
      parent = `${parent}${safeName(r)}/`;
      dirs.push(parent);
    }
    const name = hostile && r() < 0.15 ? hostileName(r) : safeName(r);
    const size = r() < 0.1 ? int(r, 10000) : int(r, 100);
    const data = r() < 0.3 ? wildString(r, 30) : bytes(r, size);
    const f: IsoFile = { path: parent + name, data };
    if (r() < 0.2) f.mode = hostile ? wildNumber(r) : pick(r, [0o600, 0o644, 0o755, 0o400]);
    files.push(f);
  }
  if (hostile && r() < 0.2 && files.length) files.push({ ...files[int(r, files.length)]! }); // a duplicate
  if (hostile && r() < 0.1 && dirs.length > 1) files.push({ path: pick(r, dirs.slice(1)).slice(0, -1), data: 'x' }); // a file named like a folder
  return files;
}

async function walk(root: string, rel = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(join(root, rel))) {
    const p = rel ? `${rel}/${e}` : e;
    if ((await lstat(join(root, p))).isDirectory()) for (const [k, v] of await walk(root, p)) out.set(k, v);
    else out.set(p, await readFile(join(root, p)));
  }
  return out;
}

const target: FuzzTarget<Ctx> = {
  cases: 1500,
  longCases: 12000,
  async setup() {
    return { dir: await mkdtemp(join(tmpdir(), 'kumo-fuzz-iso-')), accepted: 0, checked: 0 };
  },
  async teardown(ctx) {
    await rm(ctx.dir, { recursive: true, force: true });
  },
  async run(r, ctx, i) {
    const hostile = r() < 0.6;
    const files = fileSet(r, hostile);
    const volumeId = hostile && r() < 0.3 ? wildString(r, 40) : pick(r, ['cidata', 'config-2', 'CIDATA', 'x']);
    const mtime = hostile && r() < 0.2 ? pick(r, [new Date(Number.NaN), new Date(-1e15), new Date(8.64e15), new Date(0), new Date(Date.UTC(1899, 0, 1)), new Date(Date.UTC(2156, 0, 1))]) : new Date(Date.UTC(2024, 0, 1));
    const joliet = r() < 0.8;
    const iso = buildIso(files, { volumeId, mtime, joliet, rockRidge: true });
    if (iso.length % 2048 !== 0) throw new FuzzPropertyError(`the image is ${iso.length} bytes, not whole blocks`);
    // every 50th accepted case, counted (not every 50th case: about half are refused, which left
    // the number of round trips to chance, and a run of 1500 cases below the test's 10 at times)
    if (++ctx.accepted % 50 !== 1) return hostile ? 'accepted hostile' : 'accepted';
    // Read it back with libarchive: the names and contents round-trip.
    const path = join(ctx.dir, 'case.iso');
    const out = join(ctx.dir, 'out');
    await writeFile(path, iso);
    await rm(out, { recursive: true, force: true });
    await mkdir(out);
    // libarchive 3.6.2 lists nothing of some images without Joliet whose root holds only files
    // (isoinfo and xorriso read them): those are read back with xorriso.
    if (joliet) await run('bsdtar', ['-xf', path, '-C', out]);
    else await run('xorriso', ['-osirrox', 'on', '-indev', path, '-extract', '/', out]);
    const got = await walk(out);
    // A leading '/' is allowed and means the root (the writer strips it).
    const want = new Map(files.map((f) => [f.path.replace(/^\/+/, ''), Buffer.from(typeof f.data === 'string' ? Buffer.from(f.data, 'utf8') : f.data)]));
    if (got.size !== want.size) throw new FuzzPropertyError(`${joliet ? 'bsdtar' : 'xorriso'} reads ${got.size} files back, ${want.size} were written: ${JSON.stringify([...want.keys()].filter((k) => !got.has(k)).slice(0, 5))} missing`);
    for (const [k, v] of want) {
      const g = got.get(k);
      if (!g) throw new FuzzPropertyError(`${joliet ? 'bsdtar' : 'xorriso'} does not find ${JSON.stringify(k)}`);
      if (!g.equals(v)) throw new FuzzPropertyError(`${JSON.stringify(k)} reads back as other bytes (${g.length} bytes, ${v.length} written)`);
    }
    ctx.checked++;
    return 'round-tripped';
  },
};
export default target;
