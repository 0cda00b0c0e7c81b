/**
 * What the image store needs from src/disk: format sniffing, virtual size, backing chains and
 * conversion to qcow2. Kept in one place so that the store reads as its own logic.
 */
import { backingChain, diskInfo, qemuImg, sniffFormat, type DiskFormat } from '../disk/index.js';
import type { EventSink } from '../events/events.js';

export async function formatOf(path: string): Promise<DiskFormat> {
  return sniffFormat(path);
}

export async function virtualSizeOf(path: string, _format: 'qcow2' | 'raw'): Promise<number> {
  return (await diskInfo(path)).virtualSize;
}

/** Every file of a disk's backing chain, itself first (absolute paths). */
export async function chainOf(path: string): Promise<string[]> {
  return (await backingChain(path)).map((l) => l.path);
}

export async function convertToQcow2(src: string, dest: string, srcFormat: string, signal?: AbortSignal, onEvent?: EventSink): Promise<void> {
  await qemuImg.convert(src, dest, { outFormat: 'qcow2', inFormat: srcFormat, ...(signal ? { signal } : {}), ...(onEvent ? { onEvent } : {}) });
}
