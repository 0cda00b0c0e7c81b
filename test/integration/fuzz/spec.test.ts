/** Fuzz: the spec loader and validator (targets/spec.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './harness.js';

test('fuzz: loadSpecFile + validateSpec accept valid specs and refuse the rest with typed errors', async () => {
  const r = await runFuzz('spec');
  console.log(`spec: ${r.cases} cases, seed ${r.seed}: ${JSON.stringify(r.tally)}`);
  if (r.cases >= 1000) {
    assert.ok((r.tally['accepted'] ?? 0) > 0, 'some specs are accepted');
    assert.ok((r.tally['typed INVALID'] ?? 0) > 0, 'some specs are refused');
  }
});

test('found by the fuzzer: a spec file whose alias contains itself is refused (SPEC_PARSE), not a crash', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadSpecFile } = await import('../../../src/config/spec.js');
  const d = await mkdtemp(join(tmpdir(), 'kumo-fuzz-spec-'));
  try {
    await writeFile(join(d, 's.yaml'), 'name: web\nports: &p [*p]\n');
    await assert.rejects(loadSpecFile(join(d, 's.yaml')), (e: Error & { code?: string }) => e.code === 'SPEC_PARSE' && /contains itself/.test(e.message));
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('found by the fuzzer: a port object whose fields are not numbers or strings is a validation issue, not a TypeError', async () => {
  const { validateSpec } = await import('../../../src/config/spec.js');
  const bare = Object.create(null);
  assert.throws(
    () => validateSpec({ name: 'web', ports: [{ hostPort: bare, guestPort: 80 }, { hostPort: 8080, guestPort: [80] }] }),
    (e: Error & { code?: string; issues?: { path: string; message: string }[] }) =>
      e.code === 'INVALID' && e.issues!.some((i) => i.path === 'ports[0]' && /host port .* must be a number or a string/.test(i.message)) && e.issues!.some((i) => i.path === 'ports[1]' && /a list/.test(i.message)),
  );
});
