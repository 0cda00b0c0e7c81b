/** Shared set-up for the image tests: a temp KUMO_HOME, a local HTTP server, qcow2 fixtures. */
import { mkdtemp, rm, writeFile, readFile, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathsFor, type KumoPaths } from '../../../src/config/paths.js';
import { ensurePrivateDir } from '../../../src/core/fs.js';
import { startServer, type TestServer } from '../../helpers/http-server.js';
import { registerBuiltins } from '../../../src/builtins.js';

// The image store does not read instance folders itself: the instance layer registers their disks.
registerBuiltins();

process.env.KUMO_RETRY_BACKOFF_MS ??= '20';

export interface Fixture {
  dir: string;
  paths: KumoPaths;
  server: TestServer;
  done(): Promise<void>;
}

export async function setup(catalogYaml?: (url: string) => string): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-image-'));
  const paths = pathsFor(join(dir, 'home'));
  for (const d of [paths.home, paths.images, paths.instances, paths.cache, paths.tmp]) await ensurePrivateDir(d);
  const server = await startServer();
  if (catalogYaml) await writeFile(paths.catalog, catalogYaml(server.url));
  return {
    dir,
    paths,
    server,
    async done() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A real qcow2 image of `sizeMiB` virtual MiB, with `fill` written at its start (distinct content). */
export async function makeQcow2(dir: string, name: string, sizeMiB: number, fill = name): Promise<Buffer> {
  const raw = join(dir, `${name}.raw`);
  const buf = Buffer.alloc(sizeMiB * 1024 * 1024);
  buf.write(fill.repeat(1000), 0);
  await writeFile(raw, buf);
  const out = join(dir, `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, out]);
  await rm(raw);
  return readFile(out);
}

export function qemuInfo(path: string): { format: string; 'virtual-size': number; 'backing-filename'?: string } {
  return JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '-U', path], { encoding: 'utf8' }));
}

/** Every file under a folder (relative names), for "the cache is as it was" checks. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, pre: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), `${pre}${e.name}/`);
      else out.push(`${pre}${e.name}`);
    }
  };
  await walk(dir, '');
  return out.sort();
}

export const debianCatalog = (url: string) => `sources:\n  debian:\n    base: ${url}/debian\n`;
