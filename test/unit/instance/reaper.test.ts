// Whether launch() reaps (the reap option over KUMO_NO_REAP), and where the reaper's files live.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { pathsFor } from '../../../src/config/paths.js';
import { reapingWanted, registrationDir, REAPER_MAIN, runDir } from '../../../src/instance/reaper.js';

test('reaping is on by default, off with KUMO_NO_REAP=1 (or true/yes), and the option wins over the environment', () => {
  assert.equal(reapingWanted(undefined, {}), true);
  assert.equal(reapingWanted(undefined, { KUMO_NO_REAP: '' }), true);
  assert.equal(reapingWanted(undefined, { KUMO_NO_REAP: '0' }), true);
  for (const v of ['1', 'true', 'YES']) assert.equal(reapingWanted(undefined, { KUMO_NO_REAP: v }), false, v);
  assert.equal(reapingWanted(false, {}), false);
  assert.equal(reapingWanted(true, { KUMO_NO_REAP: '1' }), true);
});

test('the registrations live in KUMO_HOME/run/reaper, and the reaper program is built beside the library', () => {
  const p = pathsFor('/h');
  assert.equal(runDir(p), '/h/run');
  assert.equal(registrationDir(p), '/h/run/reaper');
  assert.match(REAPER_MAIN, /dist\/src\/reaper-main\.js$/);
  assert.ok(existsSync(REAPER_MAIN), 'dist/src/reaper-main.js is compiled');
});
