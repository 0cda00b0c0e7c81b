/**
 * The live names shell completion offers: instances (folders of KUMO_HOME/instances with a
 * record), images (names and aliases in the image store, and the catalog's aliases), networks.
 * Read straight from the files, without taking locks or asking any driver: a keystroke must not
 * wait for libvirt.
 */
import { readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { KumoPaths } from '../config/paths.js';
import type { CompletionSource } from './complete.js';

/** Network names: the private networks with a record (src/network/store.ts, read without a lock). */
async function networkNames(paths: KumoPaths): Promise<string[]> {
  const { networkNames: names } = await import('../network/store.js');
  return names(paths);
}

export function liveSource(paths: KumoPaths): CompletionSource {
  return {
    async instances() {
      const { INSTANCE_NAME_RE } = await import('../core/names.js');
      const { instanceFilesIn } = await import('../config/instance-files.js');
      const { join } = await import('node:path');
      const names = await readdir(paths.instances).catch(() => [] as string[]);
      return names.filter((n) => INSTANCE_NAME_RE.test(n) && existsSync(instanceFilesIn(join(paths.instances, n)).record)).sort();
    },
    async images() {
      const out: string[] = [];
      const { scanStore } = await import('../image/record.js');
      const scan = await scanStore(paths.images).catch(() => undefined);
      for (const r of scan?.records ?? []) {
        if (r.name) out.push(r.name);
        out.push(...r.aliases);
      }
      const { loadCatalog } = await import('../image/catalog.js');
      const cat = await loadCatalog(paths).catch(() => undefined);
      if (cat) out.push(...Object.keys(cat.aliases));
      return [...new Set(out)].sort();
    },
    networks: () => networkNames(paths),
  };
}

/** `kumo __complete WORD...`: print the candidates for the last word (see complete.ts). */
export async function runComplete(words: string[]): Promise<number> {
  const { complete, renderCompletion } = await import('./complete.js');
  const { ALIASES, loadAllCommands } = await import('./registry.js');
  const { kumoPaths } = await import('../config/paths.js');
  const h = words.findIndex((w) => w === '--home' || w.startsWith('--home='));
  const home = h < 0 ? undefined : words[h]!.startsWith('--home=') ? words[h]!.slice(7) : h + 1 < words.length - 1 ? words[h + 1] : undefined;
  const paths = kumoPaths(home ? { home } : {});
  try {
    const c = await complete(await loadAllCommands(), ALIASES, words.length ? words : [''], liveSource(paths));
    process.stdout.write(renderCompletion(c, words.length ? words[words.length - 1]! : ''));
  } catch {
    process.stdout.write(':\n'); // completion never prints an error into the user's command line
  }
  return 0;
}
