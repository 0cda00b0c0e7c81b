/**
 * "The instance must be stopped": the one guard of the use cases that need a stopped instance
 * (clone, capture, consolidate). Check (or stop it, with `stop: true`), take its lock, check again
 * under the lock (a start may have slipped in between); a running instance is an
 * InstanceRunningError that says how to stop it.
 */
import type { KumoPaths } from '../config/paths.js';
import { ConflictError, InstanceRunningError } from '../core/errors.js';
import type { Lock } from '../core/lock.js';
import { stopInstance } from './power.js';
import { instanceStatus } from './status.js';
import { lockInstance, type OpOptions } from './store.js';

export interface StopFirstOptions extends OpOptions {
  /** Stop a running instance first (graceful power-down) instead of refusing. */
  stop?: boolean;
  /** With `stop`: seconds to wait for the graceful power-down before forcing it (default: stopInstance's). */
  stopTimeoutSec?: number;
}

const RUNNING = new Set(['running', 'paused', 'unknown', 'creating']);

/**
 * Make sure the instance is stopped: refuse with a hint (InstanceRunningError), or stop it when
 * `stop` is set. `what` names the operation and `usage` the CLI way to ask for the stop.
 */
export async function ensureStopped(paths: KumoPaths, name: string, what: string, opts: StopFirstOptions & { usage: string }): Promise<void> {
  const st = await instanceStatus(paths, name);
  if (st.state === 'incomplete' || st.state === 'corrupt')
    throw new ConflictError('INSTANCE_INCOMPLETE', `instance '${name}' cannot be used: ${st.detail ?? st.state}`, { hint: `remove what is left with: kumo delete ${name}` });
  if (st.state === 'suspended')
    throw new InstanceRunningError(name, {
      message: `cannot ${what} instance '${name}' while it is suspended (its saved memory belongs to the disk as it is)`,
      hint: `resume and stop it (kumo start ${name} && kumo stop ${name}), or drop the saved state: kumo stop --force ${name}`,
      details: { state: st.state },
    });
  if (!RUNNING.has(st.state)) return;
  if (!opts.stop)
    throw new InstanceRunningError(name, {
      message: `cannot ${what} instance '${name}' while it is ${st.state === 'creating' ? 'being created' : st.state}`,
      hint: `stop it first (kumo stop ${name}), or let kumo stop it: ${opts.usage}`,
      details: { state: st.state },
    });
  await stopInstance(paths, name, { ...(opts.stopTimeoutSec !== undefined ? { timeoutSec: opts.stopTimeoutSec } : {}), ...(opts.onEvent ? { onEvent: opts.onEvent } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
}

/**
 * Check stopped (or stop it), lock, check again: the instance's lock, held by the caller to the
 * end (`await using`), on an instance known to be stopped under that lock.
 */
export async function lockStopped(paths: KumoPaths, name: string, what: string, opts: StopFirstOptions & { usage: string }): Promise<Lock> {
  await ensureStopped(paths, name, what, opts);
  const lock = await lockInstance(paths, name, what, 5000, opts.signal);
  try {
    await ensureStopped(paths, name, what, { usage: opts.usage });
  } catch (e) {
    await lock.release();
    throw e;
  }
  return lock;
}
