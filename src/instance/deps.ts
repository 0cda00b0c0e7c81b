/**
 * The two calls the instance layer makes into the image store and the disk area, in one place.
 * (Both areas are written in parallel; this module binds to their public APIs.)
 */
import type { KumoPaths } from '../config/paths.js';
import type { EventSink } from '../events/events.js';
import { run } from '../core/exec.js';
import { NotFoundError } from '../core/errors.js';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface BaseImage {
  /** The image store's id, when the image is in the store. */
  id?: string;
  ref: string;
  /** Absolute path of the read-only base file. */
  path: string;
  format: string;
  virtualSize?: number;
}

type EnsureImage = (paths: KumoPaths, ref: string, opts: { onEvent?: EventSink; signal?: AbortSignal }) => Promise<{ id?: string; path: string; format: string; virtualSize?: number }>;
type CreateOverlay = (path: string, o: { backing: string; backingFormat: string; size?: number }) => Promise<unknown>;

/** Resolve an image reference to a verified base file in the store (downloading or importing it when needed). */
export async function resolveImage(paths: KumoPaths, ref: string, opts: { onEvent?: EventSink; signal?: AbortSignal } = {}): Promise<BaseImage> {
  const m = (await import('../image/index.js')) as Record<string, unknown>;
  const ensure = m.ensureImage as EnsureImage | undefined;
  if (typeof ensure === 'function') {
    const r = await ensure(paths, ref, opts);
    return { ref, path: r.path, format: r.format, ...(r.id !== undefined ? { id: r.id } : {}), ...(r.virtualSize !== undefined ? { virtualSize: r.virtualSize } : {}) };
  }
  // Until the image store lands: a local file only.
  const p = resolve(ref);
  try {
    if (!(await stat(p)).isFile()) throw new Error('not a file');
  } catch {
    throw new NotFoundError('IMAGE_NOT_FOUND', `unknown image '${ref}'`, { hint: "see 'kumo image list', or give a path to a qcow2/raw image file" });
  }
  const info = JSON.parse((await run('qemu-img', ['info', '--output=json', p])).stdout) as { format: string; 'virtual-size': number };
  return { ref, path: p, format: info.format, virtualSize: info['virtual-size'] };
}

/** Create the instance's qcow2 overlay on the base (recording the backing format: -F). */
export async function createOverlay(path: string, base: BaseImage, size?: number): Promise<void> {
  const m = (await import('../disk/index.js')) as Record<string, unknown>;
  const qemuImg = m.qemuImg as { createOverlay?: CreateOverlay } | undefined;
  if (qemuImg && typeof qemuImg.createOverlay === 'function') {
    await qemuImg.createOverlay(path, { backing: base.path, backingFormat: base.format, ...(size !== undefined ? { size } : {}) });
    return;
  }
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', base.format, '-b', base.path, path, ...(size !== undefined ? [String(size)] : [])]);
}
