import type { IsoFile } from '../../../src/seed/index.js';

/** Random file trees for property tests (seeded, so failures reproduce). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomTree(seed: number, maxFiles = 40): IsoFile[] {
  const r = prng(seed);
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+=~ äöüé中文';
  const name = () => {
    const len = 1 + Math.floor(r() * (r() < 0.1 ? 200 : 20));
    let s = '';
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(r() * alphabet.length)];
    return s === '.' || s === '..' ? s + 'x' : s;
  };
  const dirs: string[] = [''];
  const files: IsoFile[] = [];
  const used = new Set<string>();
  const n = 1 + Math.floor(r() * maxFiles);
  for (let i = 0; i < n; i++) {
    let parent = dirs[Math.floor(r() * dirs.length)]!;
    if (r() < 0.3) {
      const d = parent + name() + '/';
      if ([...used].some((u) => u === d.slice(0, -1))) continue;
      dirs.push(d);
      parent = d;
    }
    const p = parent + name();
    if (used.has(p) || dirs.includes(p + '/')) continue;
    used.add(p);
    const size = r() < 0.2 ? Math.floor(r() * 9000) : Math.floor(r() * 300);
    const data = Buffer.alloc(size);
    for (let k = 0; k < size; k++) data[k] = Math.floor(r() * 256);
    files.push({ path: p, data });
  }
  return files.filter((f) => !dirs.includes(f.path + '/'));
}

