/**
 * Choosing QEMU's accelerator. KVM is used only where a real probe shows that guests run well
 * under it: a 512-byte boot sector that enables interrupts, waits for three BIOS timer ticks
 * (IRQ0 from the PIT) and then writes to QEMU's isa-debug-exit port must make QEMU exit within
 * 2.5 s. /dev/kvm existing is not enough: on some nested hosts guests hang or crawl under it
 * (on the development machine the boot sector alone takes ~4 s under KVM against 0.2 s under
 * TCG, and a Linux guest never comes up). On a host with working KVM the probe takes ~0.3 s.
 * Otherwise TCG with multi-threading. The result is cached per kernel and QEMU binary for a day.
 */
import { access, constants, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KumoPaths } from '../../config/paths.js';
import { EnvironmentError, ToolMissingError } from '../../core/errors.js';
import { run, which } from '../../core/exec.js';
import { readJson, writeJsonAtomic } from '../../core/fs.js';
import { debug } from '../../core/log.js';

export type Accel = 'kvm' | 'tcg';

export interface AccelChoice {
  accel: Accel;
  /** Why: e.g. 'KVM probe guest ran in 0.4 s', 'no /dev/kvm', 'KVM probe guest did not run within 5 s'. */
  reason: string;
}

export interface KvmProbe {
  usable: boolean;
  reason: string;
  /** Milliseconds the probe guest took, when it ran. */
  ms?: number;
}

/** The exit status QEMU gives when the probe writes 0x10 to isa-debug-exit: (0x10 << 1) | 1. */
const PROBE_EXIT = 33;

/**
 * The probe boot sector (16-bit real mode, loaded at 0:7c00 by the BIOS):
 *   cli; xor ax,ax; mov ds,ax; sti            interrupts on, DS=0 for the BIOS data area
 *   mov bx,[0x46c]; add bx,3                   the BIOS tick counter, plus three ticks
 *   l: hlt; cmp bx,[0x46c]; ja l               sleep until the timer interrupt has ticked 3 times
 *   mov al,0x10; out 0xf4,al                   isa-debug-exit: QEMU exits with (0x10 << 1) | 1
 *   hlt; jmp $-1
 * then the 0x55AA signature.
 */
export function probeBootSector(): Buffer {
  const b = Buffer.alloc(512);
  Buffer.from([
    0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xfb, 0x8b, 0x1e, 0x6c, 0x04, 0x83, 0xc3, 0x03, 0xf4, 0x3b, 0x1e, 0x6c, 0x04, 0x77, 0xf9, 0xb0,
    0x10, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd,
  ]).copy(b, 0);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

/** The argv of the probe guest (pure, for tests). */
export function probeArgv(imagePath: string, accel: Accel): string[] {
  return [
    '-machine', 'pc',
    '-accel', accel,
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-m', '16',
    '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
    '-drive', `file=${imagePath},format=raw,if=ide,index=0`,
  ];
}

/** Run the probe guest under `accel`; usable when QEMU exits with the probe's status in time. */
export async function probeAccel(accel: Accel, opts: { qemu?: string; timeoutMs?: number } = {}): Promise<KvmProbe> {
  const qemu = opts.qemu ?? 'qemu-system-x86_64';
  if (!(await which(qemu))) throw new ToolMissingError(qemu, 'qemu-system-x86');
  if (accel === 'kvm') {
    try {
      await access('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return { usable: false, reason: code === 'ENOENT' ? 'no /dev/kvm (no hardware virtualisation, or the kvm module is not loaded)' : `no access to /dev/kvm (${code}): add your user to the kvm group` };
    }
  }
  const timeoutMs = opts.timeoutMs ?? 2500;
  const dir = await mkdtemp(join(tmpdir(), 'kumo-probe-'));
  try {
    const img = join(dir, 'probe.img');
    await writeFile(img, probeBootSector());
    const t0 = Date.now();
    try {
      const r = await run(qemu, probeArgv(img, accel), { allowFailure: true, timeoutMs });
      const ms = Date.now() - t0;
      if (r.code === PROBE_EXIT) return { usable: true, reason: `${accel.toUpperCase()} probe guest ran in ${(ms / 1000).toFixed(1)} s`, ms };
      const why = r.stderr.trim().split('\n').pop() || `exit status ${r.code}`;
      return { usable: false, reason: `${accel.toUpperCase()} probe guest failed: ${why}` };
    } catch (e) {
      if ((e as { code?: string }).code === 'COMMAND_TIMEOUT')
        return { usable: false, reason: `${accel.toUpperCase()} is present but the probe guest did not finish within ${timeoutMs / 1000} s (guests hang or crawl under it here)` };
      throw e;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface CacheEntry {
  key: string;
  at: number;
  probe: KvmProbe;
}

async function cacheKey(qemu: string): Promise<string> {
  const path = (await which(qemu)) ?? qemu;
  let mtime = 0;
  try {
    mtime = (await stat(path)).mtimeMs;
  } catch {
    /* keyed by name only */
  }
  let kvm = 'none';
  try {
    const s = await stat('/dev/kvm');
    kvm = `${s.rdev}`;
  } catch {
    /* no kvm */
  }
  return `${release()}|${path}|${mtime}|${kvm}|${process.getuid?.() ?? ''}`;
}

/** Whether KVM works here, from the cache (a day) or a fresh probe. */
export async function kvmUsable(paths: KumoPaths | undefined, opts: { qemu?: string; fresh?: boolean } = {}): Promise<KvmProbe> {
  const qemu = opts.qemu ?? 'qemu-system-x86_64';
  const key = await cacheKey(qemu);
  const file = paths ? join(paths.cache, 'accel.json') : undefined;
  if (file && !opts.fresh) {
    try {
      const c = await readJson<CacheEntry>(file);
      if (c.key === key && Date.now() - c.at < 24 * 3600 * 1000) {
        debug(`accel: cached probe: ${c.probe.reason}`);
        return c.probe;
      }
    } catch {
      /* no cache yet */
    }
  }
  const probe = await probeAccel('kvm', { qemu });
  debug(`accel: probe: ${probe.reason}`);
  if (file) await writeJsonAtomic(file, { key, at: Date.now(), probe } satisfies CacheEntry).catch(() => {});
  return probe;
}

/** Pick the accelerator for a launch. `want: 'kvm'` fails with a hint when KVM does not work. */
export async function detectAccel(paths: KumoPaths | undefined, opts: { want?: 'auto' | Accel; qemu?: string } = {}): Promise<AccelChoice> {
  const want = opts.want ?? 'auto';
  if (want === 'tcg') return { accel: 'tcg', reason: 'asked for TCG' };
  const env = process.env.KUMO_ACCEL;
  if (want === 'auto' && (env === 'tcg' || env === 'kvm')) return detectAccel(paths, { ...opts, want: env });
  const probe = await kvmUsable(paths, { qemu: opts.qemu });
  if (probe.usable) return { accel: 'kvm', reason: probe.reason };
  if (want === 'kvm')
    throw new EnvironmentError('KVM_UNUSABLE', `KVM was asked for but does not work here: ${probe.reason}`, {
      hint: "use --accel tcg (slower) or --accel auto; 'kumo doctor' shows the details",
    });
  return { accel: 'tcg', reason: `TCG, because ${probe.reason}` };
}
