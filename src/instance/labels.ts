/**
 * Instances chosen by label, or all of them: `kumo delete --label KEY=VALUE`, `kumo delete --all`
 * and the library's `deleteInstances`. The label rules and matching are in config/labels.ts.
 */
import type { KumoPaths } from '../config/paths.js';
import { InstanceRunningError, UsageError } from '../core/errors.js';
import { deleteInstance } from './power.js';
import { listInstances } from './status.js';
import type { OpOptions } from './store.js';

export interface DeleteManyOptions extends OpOptions {
  /** Instances with these labels ("KEY=VALUE" or "KEY"; all must match). */
  label?: string | readonly string[];
  /** Every instance (not together with `label`). */
  all?: boolean;
  /** Power off running ones first (without it, a running instance refuses the whole call before anything is deleted). */
  force?: boolean;
  /** Told each name as it is deleted. */
  onDeleted?: (name: string) => void;
}

/**
 * Delete the instances a label selects, or all of them. Checks first: without `force`, a
 * running one among them refuses the call, naming every running one, and nothing is deleted.
 */
export async function deleteInstances(paths: KumoPaths, o: DeleteManyOptions): Promise<{ deleted: string[] }> {
  const hasLabel = o.label !== undefined && (typeof o.label === 'string' || o.label.length > 0);
  if (o.all && hasLabel) throw new UsageError('--all deletes every instance: it cannot be combined with --label', { hint: 'give --all, or --label KEY=VALUE, not both' });
  if (!o.all && !hasLabel) throw new UsageError('say which instances to delete: names, --label KEY=VALUE or --all', { hint: "see 'kumo help delete'" });
  const chosen = await listInstances(paths, hasLabel ? { label: o.label! } : {});
  if (!o.force) {
    const live = chosen.filter((s) => s.state === 'running' || s.state === 'paused' || s.state === 'unknown').map((s) => s.name);
    if (live.length)
      throw new InstanceRunningError(live.join(', '), {
        message: live.length > 1 ? `instances ${live.map((n) => `'${n}'`).join(', ')} are running` : `instance '${live[0]}' is running`,
        details: { instances: live },
        hint: `stop ${live.length > 1 ? 'them' : 'it'} first (kumo stop ${live.join(' ')}) or add --force; nothing was deleted` });
  }
  const deleted: string[] = [];
  for (const s of chosen) {
    await deleteInstance(paths, s.name, { force: !!o.force, ...(o.onEvent ? { onEvent: o.onEvent } : {}), ...(o.signal ? { signal: o.signal } : {}) });
    deleted.push(s.name);
    o.onDeleted?.(s.name);
  }
  return { deleted };
}
