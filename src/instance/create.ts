/**
 * The two calls the instance layer makes into the image store and the disk area, in one place.
 */
import type { KumoPaths } from '../config/paths.js';
import type { EventSink } from '../events/events.js';
import { ensureImage } from '../image/index.js';
import { qemuImg } from '../disk/index.js';

export interface BaseImage {
  /** The image store's id. */
  id?: string;
  ref: string;
  /** Absolute path of the read-only base file. */
  path: string;
  format: string;
  virtualSize?: number;
}

/** Resolve an image reference (alias, URL, file, stored name or id) to a verified base file in the store. */
export async function resolveImage(paths: KumoPaths, ref: string, opts: { onEvent?: EventSink; signal?: AbortSignal } = {}): Promise<BaseImage> {
  const r = await ensureImage(paths, ref, { ...(opts.onEvent ? { onEvent: opts.onEvent } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
  return { ref, id: r.id, path: r.path, format: r.format, virtualSize: r.virtualSize };
}

/** Create the instance's qcow2 overlay on the base (recording the backing format: -F). */
export async function createOverlay(path: string, base: BaseImage, size?: number): Promise<void> {
  await qemuImg.createOverlay(path, { backing: base.path, backingFormat: base.format, ...(size !== undefined ? { size } : {}) });
}
