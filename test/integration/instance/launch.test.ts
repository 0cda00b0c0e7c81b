/**
 * The launch use case's one failure policy, against the real QEMU without booting a guest OS: the
 * base is a blank qcow2, so QEMU starts and sits in the firmware, and readiness (with a tiny
 * timeout) fails. The failed launch leaves nothing behind unless keepOnFailure is given, and its
 * error keeps its code and carries the tail of the serial console read before the removal.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ensureHome, type KumoPaths } from '../../../src/config/paths.js';
import { importImage } from '../../../src/image/index.js';
import { deleteInstance, instanceFiles, instanceStatus, launch, listNames } from '../../../src/instance/index.js';
import type { KumoError } from '../../../src/core/errors.js';

let root = '';
let paths: KumoPaths;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-launch-'));
  paths = await ensureHome({ home: join(root, 'home') });
  const base = join(root, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '32M']);
  await importImage(paths, base, { name: 'blank' });
});

after(async () => {
  for (const n of await listNames(paths)) await deleteInstance(paths, n, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

const shape = { image: 'blank', memory: 128, cpus: 1, accel: 'tcg', timeout: 2 } as const;

test('a launch that does not become ready deletes the instance; the error keeps its code and carries the console tail', { timeout: 120_000 }, async () => {
  await assert.rejects(launch({ paths, name: 'nope', ...shape }), (e: KumoError) => {
    assert.equal(e.code, 'NOT_READY');
    assert.match(e.message, /instance 'nope' was not ready after 2 s/);
    assert.match(e.hint ?? '', /instance 'nope' was removed/);
    assert.match(e.hint ?? '', /--keep-on-failure/);
    assert.equal(e.details?.instance, 'nope');
    assert.equal(e.details?.removed, true);
    assert.ok(Array.isArray(e.details?.consoleTail), 'details.consoleTail is the list of lines');
    assert.ok((e.details?.consoleTail as string[]).length <= 20);
    return true;
  });
  assert.equal(existsSync(instanceFiles(paths, 'nope').dir), false, 'the instance folder is gone');
  assert.deepEqual(await listNames(paths), []);
});

test('with keepOnFailure the failed instance stays, and the error says how to read its console', { timeout: 120_000 }, async () => {
  await assert.rejects(launch({ paths, name: 'kept', keepOnFailure: true, ...shape }), (e: KumoError) => {
    assert.equal(e.code, 'NOT_READY');
    assert.match(e.hint ?? '', /instance 'kept' was kept for inspection/);
    assert.match(e.hint ?? '', /kumo logs kept/);
    assert.equal(e.details?.removed, false);
    assert.ok(Array.isArray(e.details?.consoleTail));
    return true;
  });
  assert.equal(existsSync(instanceFiles(paths, 'kept').record), true, 'the instance is still there');
  assert.ok(['running', 'stopped', 'crashed'].includes((await instanceStatus(paths, 'kept')).state));
  await deleteInstance(paths, 'kept', { force: true });
});

test('a launch whose create fails leaves nothing behind either (create rolls back)', async () => {
  await assert.rejects(launch({ paths, name: 'noimg', ...shape, image: 'no-such-image' }), (e: KumoError) => {
    assert.ok(e.code, 'a typed error');
    return true;
  });
  assert.equal(existsSync(instanceFiles(paths, 'noimg').dir), false);
});
