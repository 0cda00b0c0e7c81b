/** Fuzz: the ISO 9660 writer (targets/iso.ts), read back by bsdtar. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './harness.js';

test('fuzz: buildIso writes what bsdtar reads back name for name, or refuses with a typed error', async () => {
  const r = await runFuzz('iso');
  console.log(`iso: ${r.cases} cases, seed ${r.seed}: ${JSON.stringify(r.tally)}`);
  if (r.cases >= 1000) assert.ok((r.tally['round-tripped'] ?? 0) >= 10, `at least 10 round trips: ${JSON.stringify(r.tally)}`);
});
