/**
 * Whether this host can give a machine the memory asked for, checked before anything is made
 * (QEMU itself only fails at start, "cannot set up guest memory", after the instance exists).
 * Used by the backends whose machines run on this host (QEMU; libvirt with a local URI).
 */
import { totalmem } from 'node:os';
import { InvalidInputError } from '../../core/errors.js';

const MiB = 1024 * 1024;

function human(bytes: number): string {
  return bytes >= 1024 * 1024 * MiB ? `${(bytes / (1024 * 1024 * MiB)).toFixed(1)} TiB` : bytes >= 1024 * MiB ? `${(bytes / (1024 * MiB)).toFixed(1)} GiB` : `${Math.round(bytes / MiB)} MiB`;
}

/** Refuse a guest memory size larger than this host's whole memory (`hostBytes`: os.totalmem()). */
export function checkHostMemory(memoryMiB: number, hostBytes = totalmem()): void {
  const want = memoryMiB * MiB;
  if (want > hostBytes)
    throw new InvalidInputError('MEMORY_TOO_LARGE', `memory ${human(want)} is more than this host has (${human(hostBytes)} in all)`, {
      hint: `give at most ${human(hostBytes)} (e.g. --memory 2G); leave room for the host and other VMs`,
      details: { memoryMiB, hostBytes },
    });
}
