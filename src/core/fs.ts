/**
 * File helpers: atomic writes (temp file in the same folder, fsync, rename), private folders.
 */
import { open, rename, mkdir, unlink, readFile, chmod, stat, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { homedir } from 'node:os';
import { fsError, InvalidInputError } from './errors.js';

/** `~` and `~/...` as the user's home (`home`, default $HOME / the account's), other paths as given. */
export function expandHome(p: string, home: string = homedir()): string {
  return p === '~' || p.startsWith('~/') ? join(home, p.slice(1)) : p;
}

/** A temp name beside `path`, in the same folder so that rename() is atomic. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Write a file atomically: a reader sees the old content or the new one, never a half. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
  let fh;
  try {
    fh = await open(tmp, 'wx', mode);
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw fsError(e, path, 'write');
  }
  await fsyncDir(dirname(path));
}

export async function writeJsonAtomic(path: string, value: unknown, mode = 0o644): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', mode);
}

/** fsync a file's data to disk (before a record that says the file is complete is written). */
export async function fsyncFile(path: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
    await fh.sync();
  } catch (e) {
    throw fsError(e, path, 'sync');
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** fsync a directory so that a rename in it survives a crash. Best effort. */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* some file systems refuse fsync on directories */
  }
}

/** Create a folder (and parents) with mode 0700, fixing the mode of the last one if it existed. */
export async function ensurePrivateDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
    const st = await stat(path);
    if (!st.isDirectory()) throw new InvalidInputError('NOT_A_DIRECTORY', `${path} exists and is not a directory`, { hint: 'move it away or choose another path' });
    if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) await chmod(path, 0o700);
  } catch (e) {
    throw fsError(e, path, 'create folder');
  }
}

export async function readJson<T = unknown>(path: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fsError(e, path, 'read');
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new InvalidInputError('CORRUPT_STATE', `${path} is not valid JSON: ${(e as Error).message}`, {
      hint: 'the file was edited or damaged; restore it or remove the object it belongs to',
    });
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => {});
}

/** A digest of a file (sha256 unless told), hex, read in 1 MiB chunks; abortable. */
export async function hashFile(path: string, o: { algo?: string; signal?: AbortSignal } = {}): Promise<string> {
  const h = createHash(o.algo ?? 'sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024, ...(o.signal ? { signal: o.signal } : {}) })) h.update(c as Buffer);
  return h.digest('hex');
}
