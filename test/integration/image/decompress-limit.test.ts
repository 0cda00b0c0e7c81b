/**
 * Decompression bombs: a compressed file that unpacks past a plausible size is stopped with a
 * typed error before it fills the disk, and nothing is stored or left behind. Real xz / gzip /
 * zstd files made here: zeros under a lowered KUMO_DECOMPRESS_MAX, and a qcow2 of 1 MiB virtual
 * size followed by 80 MiB of zeros (more than a qcow2 of that size can hold, whatever the cap).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ensureImage, listImages } from '../../../src/image/index.js';
import { KumoError } from '../../../src/core/errors.js';
import { decompressTo, qcow2FileBound } from '../../../src/image/decompress.js';
import { setup, makeQcow2 } from './fixture.js';

function code(c: string) {
  return (e: unknown) => {
    assert.ok(e instanceof KumoError, String(e));
    assert.equal(e.code, c, e.message);
    return true;
  };
}

async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('.'));
}

function compress(tool: 'xz' | 'gzip' | 'zstd', file: string): string {
  execFileSync(tool, tool === 'zstd' ? ['-q', '-f', file] : ['-k', '-f', file]);
  return `${file}.${tool === 'xz' ? 'xz' : tool === 'gzip' ? 'gz' : 'zst'}`;
}

test('xz, gzip and zstd files of zeros unpacking past KUMO_DECOMPRESS_MAX are stopped: DECOMPRESSED_TOO_LARGE, nothing stored', async () => {
  const f = await setup();
  const before = process.env.KUMO_DECOMPRESS_MAX;
  process.env.KUMO_DECOMPRESS_MAX = '8M';
  try {
    const raw = join(f.dir, 'zeros.raw');
    await writeFile(raw, Buffer.alloc(64 * 1024 * 1024)); // 64 MiB of zeros: ~10 KiB of xz
    for (const tool of ['xz', 'gzip', 'zstd'] as const) {
      const bomb = compress(tool, raw);
      await assert.rejects(ensureImage(f.paths, bomb, { arch: 'x86_64' }), (e: unknown) => code('DECOMPRESSED_TOO_LARGE')(e) && /8388608 bytes/.test((e as Error).message), tool);
      assert.deepEqual(await listImages(f.paths), [], tool);
      assert.deepEqual(await leftovers(f.paths.cache), [], `${tool}: no temp file left`);
    }
    // Under the cap the same kind of file is stored.
    delete process.env.KUMO_DECOMPRESS_MAX;
    const rec = await ensureImage(f.paths, compress('xz', raw), { arch: 'x86_64' });
    assert.equal(rec.format, 'raw');
    assert.equal(rec.size, 64 * 1024 * 1024);
  } finally {
    if (before === undefined) delete process.env.KUMO_DECOMPRESS_MAX;
    else process.env.KUMO_DECOMPRESS_MAX = before;
    await f.done();
  }
});

test('a qcow2 unpacking past what its virtual size can take is stopped, with no cap set', async () => {
  const f = await setup();
  try {
    const q = await makeQcow2(f.dir, 'small', 1);
    const bound = qcow2FileBound(1024 * 1024, 65536);
    assert.ok(bound < 80 * 1024 * 1024);
    const file = join(f.dir, 'fat.qcow2');
    // Zeros count like any byte (the writer makes them holes, but they are output): quick to compress.
    await writeFile(file, Buffer.concat([q, Buffer.alloc(80 * 1024 * 1024)]));
    const xz = compress('xz', file);
    await assert.rejects(ensureImage(f.paths, xz, { arch: 'x86_64' }), (e: unknown) => code('DECOMPRESSED_TOO_LARGE')(e) && /virtual size 1048576/.test((e as Error).message));
    assert.deepEqual(await listImages(f.paths), []);
    assert.deepEqual(await leftovers(f.paths.cache), []);
    // The honest qcow2 compressed the same way is stored.
    const ok = join(f.dir, 'ok.qcow2');
    await writeFile(ok, q);
    const rec = await ensureImage(f.paths, compress('xz', ok), { arch: 'x86_64' });
    assert.equal(rec.id, createHash('sha256').update(q).digest('hex'));
  } finally {
    await f.done();
  }
});

test('decompressTo: an explicit maxBytes stops the copy, and the limit error wins over the dying xz', async () => {
  const f = await setup();
  try {
    const raw = join(f.dir, 'data.raw');
    await writeFile(raw, randomBytes(4 * 1024 * 1024));
    const xz = compress('xz', raw);
    await assert.rejects(decompressTo(xz, join(f.dir, 'out1'), 'xz', { maxBytes: 1024 * 1024, label: 'data.raw.xz' }), code('DECOMPRESSED_TOO_LARGE'));
    await assert.rejects(decompressTo(raw, join(f.dir, 'out2'), undefined, { maxBytes: 1024 * 1024, label: 'data.raw' }), code('DECOMPRESSED_TOO_LARGE'));
    const r = await decompressTo(xz, join(f.dir, 'out3'), 'xz', { maxBytes: 4 * 1024 * 1024 });
    assert.equal(r.bytes, 4 * 1024 * 1024);
  } finally {
    await f.done();
  }
});
