/**
 * The test image: a tuned Debian 12 qcow2 built by kumo's image builder, cached outside the repo
 * in ${KUMO_TEST_CACHE:-/var/cache/kumo-test} under a name made of its recipe's hash, so it is
 * built once and reused until the elements, the builder or the options change.
 *
 *   node dist/test/fixtures/test-image.js     builds it if needed and prints its path
 *   testImagePath()                           the path, for tests (never builds)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { recipeHash } from '../../src/builder/index.js';

export const TEST_IMAGE_RECIPE = {
  distro: 'debian',
  release: 'bookworm',
  elements: ['vm', 'cloud-init', 'openssh-server', 'qemu-guest-agent', 'growroot', 'fast-boot', 'sysprep'],
  size: '4G',
  format: 'qcow2' as const,
};

export function testCacheDir(): string {
  return process.env.KUMO_TEST_CACHE || '/var/cache/kumo-test';
}

/** Where the image of the current recipe lives (whether or not it is built). */
export function testImageCachedPath(): string {
  return join(testCacheDir(), 'images', `debian-12-kumo-test-${recipeHash(TEST_IMAGE_RECIPE).slice(0, 16)}.qcow2`);
}

/** KUMO_TEST_IMAGE if set, else the cached image of the current recipe; throws when not built. */
export function testImagePath(): string {
  const env = process.env.KUMO_TEST_IMAGE;
  if (env) return env;
  const p = testImageCachedPath();
  if (!existsSync(p)) throw new Error(`the test image is not built (expected ${p}): run 'node dist/test/fixtures/test-image.js' first`);
  return p;
}
