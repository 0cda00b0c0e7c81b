/**
 * `image prune` / `image rm` racing a `create` of an instance on that image, with real qemu-img
 * (no boot). Each round runs a create and a removal of its image at once, with the removal started
 * at a random moment: either the create won (its disk's base is still in the store, and the
 * removal left it alone), or the removal won and the create failed with IMAGE_NOT_FOUND leaving
 * no instance folder behind. Never: an instance whose base file is gone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathsFor, type KumoPaths } from '../../../src/config/paths.js';
import { ensurePrivateDir } from '../../../src/core/fs.js';
import { isKumoError } from '../../../src/core/errors.js';
import { registerBuiltins } from '../../../src/builtins.js';
import { createInstance, instanceFiles } from '../../../src/instance/index.js';
import { importImage, listImages, pruneImages, removeImage, type PruneResult } from '../../../src/image/index.js';

registerBuiltins();
process.env.KUMO_ACCEL = 'tcg';

let dir = '';
let paths: KumoPaths;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-races-'));
  paths = pathsFor(join(dir, 'home'));
  for (const d of [paths.home, paths.images, paths.instances, paths.cache, paths.tmp]) await ensurePrivateDir(d);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The backing file qemu-img reads for `disk` (an independent reader of the overlay). */
function backingOf(disk: string): string | undefined {
  return (JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', disk], { encoding: 'utf8' })) as { 'full-backing-filename'?: string })['full-backing-filename'];
}

test('create racing image prune / rm: the create wins with its base kept, or fails cleanly', async () => {
  const outcomes = { created: 0, refused: 0 };
  const made: string[] = [];
  const ROUNDS = 16;
  for (let i = 0; i < ROUNDS; i++) {
    // A distinct image per round (the size differs, so the content and the id differ).
    const file = join(dir, `base-${i}.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, `${32 + i}M`]);
    const name = `img-${i}`;
    const rec = await importImage(paths, file, { name });
    const inst = `race-${i}`;
    // The removal starts at one of the moments that matter: when the create has just resolved the
    // image, when it makes keys (the old window: image resolved, overlay not made yet), when its
    // disk step starts, or at a random moment.
    const trigger = (['image', 'keys', 'disk', 'random'] as const)[i % 4];
    const useRm = i % 2 === 1;
    let fire!: () => void;
    const fired = new Promise<void>((r) => (fire = r));
    const onEvent = (ev: { type: string; id?: string; state?: string }) => {
      if (ev.type !== 'step') return;
      if ((trigger === 'image' && ev.id === 'image' && ev.state === 'done') || (ev.id === trigger && ev.state === 'start')) fire();
    };
    if (trigger === 'random') void pause(Math.floor(Math.random() * 400)).then(fire);
    const [c, r] = await Promise.allSettled([
      createInstance(paths, { name: inst, image: name, memory: '256M' }, { onEvent }).finally(fire),
      fired.then(async (): Promise<PruneResult | undefined> => (useRm ? void (await removeImage(paths, name)) : pruneImages(paths, { all: true }))),
    ]);
    const stored = (await listImages(paths)).find((x) => x.id === rec.id);
    if (c.status === 'fulfilled') {
      outcomes.created++;
      made.push(inst);
      assert.ok(stored, `round ${i}: the create succeeded but its image ${rec.id} is gone from the store`);
      assert.equal(existsSync(c.value.image.path), true, `round ${i}: base file ${c.value.image.path} is gone`);
      assert.equal(backingOf(instanceFiles(paths, inst).disk), c.value.image.path);
      // The removal saw the instance: rm refused naming it; prune kept the image.
      if (useRm) {
        assert.equal(r.status, 'rejected', `round ${i}: rm succeeded while instance ${inst} used the image`);
        assert.equal((r as PromiseRejectedResult).reason.code, 'IMAGE_IN_USE');
        assert.match((r as PromiseRejectedResult).reason.message, new RegExp(`in use by instance ${inst}`));
      } else {
        assert.equal(r.status, 'fulfilled');
        assert.equal((r as PromiseFulfilledResult<PruneResult>).value.removed.some((x) => x.id === rec.id), false);
      }
    } else {
      outcomes.refused++;
      const e = c.reason;
      assert.equal(isKumoError(e), true, `round ${i}: untyped error ${e?.stack ?? e}`);
      assert.equal(e.code, 'IMAGE_NOT_FOUND', `round ${i}: ${e.message}`);
      assert.equal(typeof e.hint, 'string');
      assert.equal(r.status, 'fulfilled', `round ${i}: the removal failed too: ${(r as PromiseRejectedResult).reason}`);
      assert.equal(stored, undefined);
      assert.equal(existsSync(join(paths.instances, inst)), false, `round ${i}: a half-made instance folder is left`);
    }
  }
  // No half-made folders of any round, and no store lock left held.
  const left = (await readdir(paths.instances)).filter((n) => !n.startsWith('.'));
  assert.deepEqual(left.sort(), made.sort());
  assert.equal(existsSync(join(paths.images, '.store.lock')), false);
  assert.equal(outcomes.created + outcomes.refused, ROUNDS);
  console.log(`# ${outcomes.created} creates won, ${outcomes.refused} refused`);
});
