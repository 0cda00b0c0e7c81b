/**
 * scripts/programs.txt (the host programs the tests run, with their Debian packages) and
 * scripts/setup.sh's package arrays, read for the tests that keep the two honest; and a scanner
 * that finds, in test sources, the host programs they spawn.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './cli.js';

export interface ProgramEntry {
  program: string;
  pkg: string;
  line: number;
}

export function readProgramList(text = readFileSync(join(REPO, 'scripts', 'programs.txt'), 'utf8')): ProgramEntry[] {
  const out: ProgramEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.replace(/#.*/, '').trim();
    if (!l) return;
    const [program, pkg, ...rest] = l.split(/\s+/);
    if (!program || !pkg || rest.length) throw new Error(`scripts/programs.txt:${i + 1}: expected 'PROGRAM PACKAGE', got '${raw}'`);
    out.push({ program, pkg, line: i + 1 });
  });
  return out;
}

/** The words of a bash array assignment `NAME=( ... )` in scripts/setup.sh (comments dropped). */
export function setupArray(name: string, text = readFileSync(join(REPO, 'scripts', 'setup.sh'), 'utf8')): string[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${name}=(`));
  if (start < 0) throw new Error(`scripts/setup.sh has no ${name}=( ... ) array`);
  const words: string[] = [];
  for (let i = start; i < lines.length; i++) {
    let l = lines[i]!.replace(/#.*/, '');
    if (i === start) l = l.slice(name.length + 2);
    const end = l.indexOf(')');
    words.push(...(end >= 0 ? l.slice(0, end) : l).split(/\s+/).filter(Boolean));
    if (end >= 0) return words;
  }
  throw new Error(`scripts/setup.sh: the ${name} array is not closed`);
}

/** Calls that run a host program whose name is a string literal, in test sources. */
const CALLS = [
  /\b(?:spawnSync|spawn|execFileSync|execFile|run|runCapture)\(\s*'([A-Za-z0-9_.+-]+)'/g, // spawn('prog', ...), run('prog', ...)
  /\bsh\(\s*'([A-Za-z0-9_.+-]+)',\s*\[/g, // a local helper sh('prog', [args])
  /\bhave\('([A-Za-z0-9_.+-]+)'\)/g, // have('tool') probes
  /command -v ([A-Za-z0-9_.+-]+)/g, // shell probes
  /'\/usr\/s?bin\/([A-Za-z0-9_.+-]+)'/g, // absolute paths of programs
];

/** This file's own source (its patterns' comments name example programs). */
const SELF = join(REPO, 'test', 'helpers', 'programs.ts');

/** program -> files (relative to the repo) that run it. */
export function scanPrograms(dirs: string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const scan = (p: string) => {
    const s = readFileSync(p, 'utf8');
    for (const re of CALLS)
      for (const m of s.matchAll(re)) {
        const rel = p.slice(REPO.length + 1);
        const list = found.get(m[1]!) ?? [];
        if (!list.includes(rel)) list.push(rel);
        found.set(m[1]!, list);
      }
  };
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && p !== SELF) scan(p);
    }
  };
  for (const d of dirs) walk(join(REPO, d));
  return found;
}
