/**
 * `kumo launch` is the library's launch(): a launch that fails leaves nothing behind, unless
 * --keep-on-failure is given. The VM boots a blank disk under TCG (nothing to boot, so readiness
 * times out after a second): QEMU runs for real, no guest is needed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { kumo } from '../../helpers/cli.js';

let home = '';
let img = '';
const k = (args: string[]) => kumo(args, { home, env: { KUMO_ACCEL: 'tcg' } });
const instances = async () => (existsSync(join(home, 'instances')) ? (await readdir(join(home, 'instances'))).filter((n) => !n.startsWith('.')) : []);

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-launch-'));
  img = join(home, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '32M']);
});

after(async () => {
  await k(['delete', '--force', 'kept']).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

test('a launch that fails is removed; --keep-on-failure keeps it and says how to look at it', async () => {
  const r = await k(['launch', img, '--name', 'gone', '--memory', '128M', '--timeout', '1']);
  assert.equal(r.code, 8, r.stderr);
  assert.match(r.stderr, /kumo: instance 'gone' was not ready after 1 s/);
  assert.doesNotMatch(r.stderr, /kept for inspection/);
  assert.deepEqual(await instances(), []);

  const kept = await k(['launch', img, '--name', 'kept', '--memory', '128M', '--timeout', '1', '--keep-on-failure']);
  assert.equal(kept.code, 8, kept.stderr);
  assert.match(kept.stderr, /instance 'kept' was kept for inspection: see its console with 'kumo logs kept', remove it with 'kumo delete --force kept'/);
  assert.deepEqual(await instances(), ['kept']);
  const del = await k(['delete', '--force', 'kept']);
  assert.equal(del.code, 0, del.stderr);
  assert.deepEqual(await instances(), []);
});

test('a launch refused before anything is made says nothing about keeping it', async () => {
  const r = await k(['launch', img, '--name', 'Bad_Name', '--keep-on-failure']);
  assert.notEqual(r.code, 0);
  assert.doesNotMatch(r.stderr, /kept for inspection/);
  assert.deepEqual(await instances(), []);
});
