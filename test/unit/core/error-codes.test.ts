// One table of error codes (src/core/errors.ts ERROR_CODES): every code thrown in src/ is in it,
// with the kind (exit category) it is thrown with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, type ErrorKind } from '../../../src/core/errors.js';

const repo = process.env.KUMO_REPO ?? process.cwd();

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The kind each error class gives its code (the classes of src/core/errors.ts, and subclasses by what they extend). */
const CLASS_KIND: Record<string, ErrorKind> = {
  InvalidInputError: 'invalid',
  NotFoundError: 'not-found',
  ConflictError: 'conflict',
  EnvironmentError: 'environment',
  TimeoutError: 'timeout',
  UnsupportedError: 'unsupported',
};

interface Use {
  code: string;
  kind?: ErrorKind;
  where: string;
}

function uses(): Use[] {
  const files = sources(join(repo, 'src'));
  const text = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));
  // classes declared in src/ and the class they extend, to find the kind of `new FooError('CODE')` and `super('CODE')`
  const parent = new Map<string, string>();
  for (const t of text.values()) for (const m of t.matchAll(/class (\w+) extends (\w+)/g)) parent.set(m[1]!, m[2]!);
  const kindOf = (cls: string | undefined): ErrorKind | undefined => {
    for (let c = cls, i = 0; c && i < 10; c = parent.get(c), i++) if (CLASS_KIND[c]) return CLASS_KIND[c];
    return undefined;
  };
  const out: Use[] = [];
  for (const [file, t] of text) {
    const rel = file.slice(repo.length + 1);
    const line = (i: number) => `${rel}:${t.slice(0, i).split('\n').length}`;
    // new SomeError('CODE', ...) and new KumoError('CODE', 'kind', ...)
    for (const m of t.matchAll(/new (\w+)\(\s*'([A-Z][A-Z0-9_]+)'(?:,\s*'([a-z-]+)')?/g))
      out.push({ code: m[2]!, kind: m[1] === 'KumoError' ? (m[3] as ErrorKind) : kindOf(m[1]), where: line(m.index!) });
    // super('CODE', ...) inside `class X extends Y`: the kind is Y's (or the explicit one)
    for (const m of t.matchAll(/super\(\s*'([A-Z][A-Z0-9_]+)'(?:,\s*'([a-z-]+)')?/g)) {
      const before = [...t.slice(0, m.index!).matchAll(/class \w+ extends (\w+)/g)].at(-1);
      out.push({ code: m[1]!, kind: (m[2] as ErrorKind | undefined) ?? kindOf(before?.[1]), where: line(m.index!) });
    }
    // codes compared or written as data: `code === 'CODE'`, `code: 'CODE'` (not errno codes, not the
    // KUMO_* markers the HTTP client puts on plain Node errors)
    for (const m of t.matchAll(/code(?:\s*[!=]==\s*|:\s*)'([A-Z][A-Z0-9_]+)'/g)) {
      const code = m[1]!;
      if (/^(E[A-Z]+|EAI_[A-Z]+|ERR_[A-Z_]+)$/.test(code) || code.startsWith('KUMO_')) continue; // Node's errno and ERR_* codes
      out.push({ code, where: line(m.index!) });
    }
  }
  return out;
}

test('every error code used in src/ is in the one table (src/core/errors.ts ERROR_CODES)', () => {
  const found = uses();
  assert.ok(found.length > 100, `found only ${found.length} uses: the scan is broken`);
  const table = ERROR_CODES as Record<string, { kind: ErrorKind; otherKinds?: readonly ErrorKind[] }>;
  const missing = found.filter((u) => !(u.code in table)).map((u) => `${u.code} (${u.where})`);
  assert.deepEqual(missing, [], 'add these codes to ERROR_CODES');
  const wrongKind = found
    .filter((u) => u.kind && u.code in table && table[u.code]!.kind !== u.kind && !table[u.code]!.otherKinds?.includes(u.kind))
    .map((u) => `${u.code} is thrown as ${u.kind} at ${u.where}, the table says ${table[u.code]!.kind}`);
  assert.deepEqual(wrongKind, []);
});

test('the table lists no code that nothing uses', () => {
  const used = new Set(uses().map((u) => u.code));
  const unused = Object.keys(ERROR_CODES).filter((c) => !used.has(c));
  assert.deepEqual(unused, [], 'remove these codes from ERROR_CODES, or use them');
});

test('one code per meaning: "not a disk image" and "disk full" each have one code', () => {
  const codes = new Set(uses().map((u) => u.code));
  assert.ok(codes.has('NOT_A_DISK_IMAGE') && !codes.has('NOT_AN_IMAGE'));
  assert.ok(codes.has('DISK_FULL'));
});
