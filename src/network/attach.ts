/**
 * The switches as instances need them: started (or found again) before a member's machine
 * starts, and stopped once no member runs. Both under the network store's lock, so a start and
 * a stop on one network never cross (a switch is never stopped under an instance that is joining).
 */
import type { KumoPaths } from '../config/paths.js';
import { lockNetworks, networkFiles, networkMembers, readNetwork } from './store.js';
import { ensureSwitch, stopSwitch } from './switch.js';

export interface SwitchEndpoint {
  network: string;
  /** The VDE switch's control folder (QEMU: -netdev vde,sock=). */
  socket: string;
  /** The switch was found dead (killed, crashed) and started again now. */
  restarted: boolean;
}

/** Start (or find) the switch of each network; a network that is gone is a NetworkNotFoundError. */
export async function ensureSwitches(paths: KumoPaths, networks: readonly string[], o: { onWarn?: (msg: string) => void; signal?: AbortSignal } = {}): Promise<SwitchEndpoint[]> {
  if (!networks.length) return [];
  await using _lock = await lockNetworks(paths, 'start switch', o.signal);
  const out: SwitchEndpoint[] = [];
  for (const n of networks) {
    await readNetwork(paths, n); // still there (refused removal while leased, but a hand-removed folder)
    const f = networkFiles(paths, n);
    let dead = false;
    await ensureSwitch(f, {
      onWarn: (m) => {
        dead = true;
        o.onWarn?.(`network '${n}': ${m}`);
      },
      ...(o.signal ? { signal: o.signal } : {}),
    });
    out.push({ network: n, socket: f.socket, restarted: dead });
  }
  return out;
}

/**
 * Stop the switch of each network on which no member runs any more. `running(instance)` says
 * whether a member's machine runs (the instance layer asks its driver); `except` is left out
 * (the instance being stopped or deleted). Returns the networks whose switch was stopped.
 */
export async function stopIdleSwitches(paths: KumoPaths, networks: readonly string[], running: (instance: string) => Promise<boolean>, o: { except?: string; signal?: AbortSignal } = {}): Promise<string[]> {
  if (!networks.length) return [];
  await using _lock = await lockNetworks(paths, 'stop switch', o.signal);
  const stopped: string[] = [];
  for (const n of networks) {
    const rec = await readNetwork(paths, n).catch(() => undefined);
    const f = networkFiles(paths, n);
    let busy = false;
    if (rec) {
      for (const m of await networkMembers(paths, rec)) {
        if (m === o.except) continue;
        if (await running(m).catch(() => true)) {
          busy = true;
          break;
        }
      }
    }
    if (!busy && (await stopSwitch(f))) stopped.push(n);
  }
  return stopped;
}
