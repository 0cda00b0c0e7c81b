/**
 * Build an image and register it in kumo's image store under a name (`kumo image build` without
 * --output): the name is checked before the long build, the image is built into KUMO_HOME's
 * tmp folder and moved into the store with its build metadata.
 */
import { rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { KumoPaths } from '../config/paths.js';
import { checkImageName, importImage, type ImageRecord } from '../image/index.js';
import { buildImage, type BuildOptions, type BuildResult } from './builder.js';

export interface BuildAndRegisterOptions extends Omit<BuildOptions, 'output'> {
  /** The name in the image store. */
  name: string;
}

export async function buildAndRegisterImage(paths: KumoPaths, opts: BuildAndRegisterOptions): Promise<{ build: BuildResult; image: ImageRecord }> {
  const { name, ...build } = opts;
  checkImageName(name); // before a long build
  const target = join(paths.tmp, `build-${process.pid}-${randomBytes(4).toString('hex')}.${build.format ?? 'qcow2'}`);
  try {
    const r = await buildImage({ ...build, output: target });
    const image = await importImage(paths, target, {
      name,
      move: true,
      metadata: {
        distro: r.distro,
        release: r.release,
        elements: r.elements,
        format: r.format,
        builtAt: r.builtAt,
        buildSeconds: r.buildSeconds,
        sha256: r.sha256,
        packages: r.packages,
      },
      source: { kind: 'built', distro: r.distro, release: r.release, elements: r.elements, log: r.logFile },
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { build: r, image };
  } finally {
    await rm(target, { force: true });
  }
}
