/**
 * The Vagrant box of the peers bench: kumo's test image recipe plus the `vagrant` element (the
 * `vagrant` user with Vagrant's insecure key, passwordless sudo), built by kumo's image builder
 * and cached under ${KUMO_TEST_CACHE:-/var/cache/kumo-test}/peers/ by its recipe's hash; packed as
 * a vagrant-libvirt box (metadata.json, Vagrantfile, box.img in an uncompressed tar).
 * The test image itself (test/helpers/test-image.ts) is not changed.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildImage, recipeHash } from '../../src/builder/index.js';
import { acquireLock } from '../../src/core/lock.js';
import { TEST_IMAGE_RECIPE, testCacheDir } from '../../test/helpers/test-image.js';

/** The test image's recipe with `vagrant` added (same distro, size, format and other elements). */
export const BOX_IMAGE_RECIPE = { ...TEST_IMAGE_RECIPE, elements: [...TEST_IMAGE_RECIPE.elements, 'vagrant'] };

export function peersCacheDir(): string {
  return join(testCacheDir(), 'peers');
}

/** Where the box's qcow2 and .box of the current recipe live (built or not). */
export function boxPaths(cache = peersCacheDir()): { image: string; box: string } {
  const base = `debian-12-kumo-vagrant-${recipeHash(BOX_IMAGE_RECIPE).slice(0, 16)}`;
  return { image: join(cache, `${base}.qcow2`), box: join(cache, `${base}.box`) };
}

/** vagrant-libvirt's box metadata: provider libvirt, a qcow2 box.img, its virtual size in whole GiB (rounded up). */
export function boxMetadata(virtualSizeBytes: number): { provider: 'libvirt'; format: 'qcow2'; virtual_size: number } {
  if (!Number.isFinite(virtualSizeBytes) || virtualSizeBytes <= 0) throw new Error(`a box needs the image's virtual size in bytes, got ${virtualSizeBytes}`);
  return { provider: 'libvirt', format: 'qcow2', virtual_size: Math.ceil(virtualSizeBytes / 2 ** 30) };
}

/** The Vagrantfile inside the box: the provider's defaults every user of the box gets. */
export function boxVagrantfile(): string {
  return [
    'Vagrant.configure("2") do |config|',
    '  config.vm.provider :libvirt do |libvirt|',
    '    libvirt.disk_bus = "virtio"',
    '  end',
    'end',
    '',
  ].join('\n');
}

function run(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Build the box image and pack the .box if the recipe changed; returns their paths. Progress on stderr. */
export async function ensureBox(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<{ image: string; box: string; virtualSizeBytes: number }> {
  const cache = peersCacheDir();
  mkdirSync(join(cache, 'build'), { recursive: true });
  const p = boxPaths(cache);
  const lock = await acquireLock(join(cache, 'box.lock'), { op: 'build', what: 'the peers bench Vagrant box', waitMs: 2 * 3600 * 1000 });
  try {
    if (!existsSync(p.image)) {
      log(`building the box image (${BOX_IMAGE_RECIPE.elements.join(' ')}) into ${p.image}`);
      const r = await buildImage({
        ...BOX_IMAGE_RECIPE,
        output: p.image,
        cacheDir: join(cache, 'build'),
        onEvent: (e) => {
          if (e.type === 'step' && e.state !== 'skip') log(`[${e.state}] ${e.label}${e.detail ? `: ${e.detail}` : ''}`);
        },
      });
      log(`box image built in ${r.buildSeconds} s`);
    }
    const info = JSON.parse(run(['qemu-img', 'info', '--output=json', p.image])) as { 'virtual-size': number };
    if (!existsSync(p.box)) {
      const work = `${p.box}.tmp-${process.pid}`;
      mkdirSync(work, { recursive: true });
      writeFileSync(join(work, 'metadata.json'), JSON.stringify(boxMetadata(info['virtual-size'])) + '\n');
      writeFileSync(join(work, 'Vagrantfile'), boxVagrantfile());
      run(['cp', '--reflink=auto', '--sparse=always', p.image, join(work, 'box.img')]);
      run(['tar', '-C', work, '--sparse', '-cf', `${work}.tar`, 'metadata.json', 'Vagrantfile', 'box.img']);
      renameSync(`${work}.tar`, p.box);
      run(['rm', '-rf', work]);
    }
    // keep only the current recipe's box
    const keep = p.image.split('/').pop()!.replace(/\.qcow2$/, '');
    for (const n of readdirSync(cache)) if (n.startsWith('debian-12-kumo-vagrant-') && !n.startsWith(keep)) rmSync(join(cache, n), { recursive: true, force: true });
    return { ...p, virtualSizeBytes: info['virtual-size'] };
  } finally {
    await lock.release();
  }
}
