/**
 * Host checks, as `kumo doctor` reports them: one per thing kumo needs from the host (a program,
 * a device, firmware files), with what was found and how to fix it. Each backend contributes its
 * own (`DriverBackend.checks`); doctor adds the ones every backend needs.
 */
import { run, which } from '../../core/exec.js';

export type HostCheckStatus = 'ok' | 'warn' | 'missing' | 'error';

export interface HostCheck {
  id: string;
  name: string;
  status: HostCheckStatus;
  /** What was found: a path, a version, a figure. */
  found: string;
  /** What it is needed for. */
  neededFor: string;
  /** How to fix it; present unless ok. */
  hint?: string;
}

async function versionOf(cmd: string, args: string[], pattern: RegExp): Promise<string | undefined> {
  try {
    const r = await run(cmd, args, { allowFailure: true, timeoutMs: 10000 });
    const m = (r.stdout + r.stderr).match(pattern);
    return m?.[1] ?? (r.stdout.split('\n')[0] || undefined);
  } catch {
    return undefined;
  }
}

/** A program on PATH (with its version when `versionArgs` are given); `missing` is the status when it is absent. */
export async function toolCheck(
  id: string,
  cmd: string,
  pkg: string,
  neededFor: string,
  versionArgs: string[] | undefined,
  pattern: RegExp,
  missing: HostCheckStatus = 'missing',
): Promise<HostCheck> {
  const path = await which(cmd);
  if (!path) return { id, name: cmd, status: missing, found: 'not found', neededFor, hint: `apt-get install ${pkg}` };
  const v = versionArgs ? await versionOf(path, versionArgs, pattern) : undefined;
  return { id, name: cmd, status: 'ok', found: v ? `${path} (${v})` : path, neededFor };
}
