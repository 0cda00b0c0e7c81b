/**
 * Tiny crafted compressed files whose headers claim huge sizes: `kumo disk info` answers at
 * once, without a 2 GiB allocation or an endless loop (every size read from a header is bounded
 * by the file's size).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo } from '../../helpers/cli.js';
import { diskInfo } from '../../../src/disk/index.js';

const XZ_HEADER = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46]);
function footer(backwardSize: number): Buffer {
  const f = Buffer.alloc(12);
  f.writeUInt32LE(backwardSize, 4);
  f.write('\x00\x04YZ', 8, 'latin1');
  return f;
}

test('crafted .xz files: a 2 GiB index claim (24 bytes) and an endless record count (32 bytes) are answered at once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-crafted-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const huge = join(dir, 'huge-index.xz');
  await writeFile(huge, Buffer.concat([XZ_HEADER, footer(0x1fffffff)])); // index of 2 GiB in a 24-byte file
  const loop = join(dir, 'many-records.xz');
  // an index of 8 bytes whose record count is 2^36-1: the old parser looped that many times
  await writeFile(loop, Buffer.concat([XZ_HEADER, Buffer.from([0x00, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00]), footer(1)]));
  for (const f of [huge, loop]) {
    assert.equal((await diskInfo(f)).virtualSize, 0, `${f}: an unknown size, not a made-up one`);
    const r = await kumo(['disk', 'info', f, '--json'], { home: dir, timeoutMs: 20_000 });
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).format, 'xz');
  }
});
