/** Fuzz: the user-data merger (targets/userdata.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './harness.js';

test("fuzz: composeUserData keeps kumo's user, key and sudo rule, or refuses with a typed error", async () => {
  const r = await runFuzz('userdata');
  console.log(`userdata: ${r.cases} cases, seed ${r.seed}: ${JSON.stringify(r.tally)}`);
  if (r.cases >= 1000) for (const k of ['merged', 'mime', 'typed INVALID']) assert.ok((r.tally[k] ?? 0) > 0, `${k}: ${JSON.stringify(r.tally)}`);
});
