/**
 * An instance's private networks over its life (src/network/ does the networks themselves):
 * their switches started before its machine starts, stopped once no member runs; and the name ->
 * address table pushed into every running member when one joins (starts) or leaves (is deleted).
 */
import type { KumoPaths } from '../config/paths.js';
import { Emitter, type EventSink } from '../events/events.js';
import { getDriver } from '../driver/index.js';
import { ensureSwitches, stopIdleSwitches } from '../network/attach.js';
import { pushHosts } from '../network/hosts-sync.js';
import { hostsTable, networkMembers, readNetwork } from '../network/store.js';
import { resolveSshTarget } from './ssh-target.js';
import { readRecord, runtimeFor, type InstanceRecord } from './store.js';

export function networksOf(rec: InstanceRecord): string[] {
  return (rec.networks ?? []).map((n) => n.network);
}

/** Whether an instance's machine is up (running, paused, or alive but not answering). */
export async function instanceRunning(paths: KumoPaths, name: string): Promise<boolean> {
  const rec = await readRecord(paths, name);
  const st = await (await getDriver(rec.driver)).status(runtimeFor(paths, rec));
  return st.state === 'running' || st.state === 'paused' || st.state === 'unknown';
}

/** Start (or find again) the switches of the instance's networks. */
export async function joinSwitches(paths: KumoPaths, rec: InstanceRecord, o: { onEvent?: EventSink; signal?: AbortSignal } = {}): Promise<void> {
  const nets = networksOf(rec);
  if (!nets.length) return;
  const em = new Emitter(o.onEvent);
  const eps = await ensureSwitches(paths, nets, { onWarn: (m) => em.warn(m), ...(o.signal ? { signal: o.signal } : {}) });
  // QEMU does not plug a running NIC into a new switch: members that ran on the dead one must restart.
  for (const ep of eps.filter((e) => e.restarted)) {
    const net = await readNetwork(paths, ep.network).catch(() => undefined);
    if (!net) continue;
    const cut: string[] = [];
    for (const m of await networkMembers(paths, net)) if (m !== rec.name && (await instanceRunning(paths, m).catch(() => false))) cut.push(m);
    if (cut.length) em.warn(`network '${ep.network}': ${cut.join(', ')} ran on the switch that died and ${cut.length === 1 ? 'is' : 'are'} cut off from it: kumo restart ${cut.join(' ')}`);
  }
}

/** Stop the switches of `networks` on which no member but `except` runs. */
export async function leaveSwitches(paths: KumoPaths, networks: readonly string[], except: string): Promise<string[]> {
  return stopIdleSwitches(paths, networks, (m) => instanceRunning(paths, m), { except });
}

/**
 * Push each network's name -> address table into its running members (all, or only `only`),
 * in parallel; a member that cannot be reached is skipped with a warning (it gets the table
 * the next time it starts, or when another member joins or leaves).
 */
export async function syncHosts(paths: KumoPaths, networks: readonly string[], o: { onEvent?: EventSink; signal?: AbortSignal; only?: readonly string[]; skip?: string } = {}): Promise<void> {
  const em = new Emitter(o.onEvent);
  for (const n of networks) {
    const net = await readNetwork(paths, n).catch(() => undefined);
    if (!net) continue;
    const members = await networkMembers(paths, net);
    const live = new Set(members);
    const table = hostsTable(net).filter((e) => live.has(e.name));
    const targets = members.filter((m) => m !== o.skip && (!o.only || o.only.includes(m)));
    await Promise.all(
      targets.map(async (m) => {
        if (!(await instanceRunning(paths, m).catch(() => false))) return;
        const rec = await readRecord(paths, m).catch(() => undefined);
        if (!rec) return;
        const target = await resolveSshTarget(paths, rec).catch(() => undefined);
        if (!target) return;
        const r = await pushHosts(target, n, table, { ...(o.signal ? { signal: o.signal } : {}) });
        if (!r.ok) em.warn(`network '${n}': could not update /etc/hosts in '${m}': ${r.error}`);
      }),
    );
  }
}
