import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, readFile, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureImage, listImages, findImage, syncImages, pruneImages } from '../../../src/image/index.js';
import { KumoError } from '../../../src/core/errors.js';
import { sha256, sumsFile, bsdChecksumFile, simplestreams } from '../../helpers/http-server.js';
import { setup, makeQcow2, qemuInfo, listTree, debianCatalog } from './fixture.js';

const DEB = '/debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2';

function code(c: string) {
  return (e: unknown) => {
    assert.ok(e instanceof KumoError, String(e));
    assert.equal(e.code, c, e.message);
    return true;
  };
}

test('an alias resolves through SHA512SUMS, downloads, verifies and is stored read-only; a second ensure does not download', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'deb', 16);
    f.server.put(DEB, img);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img, 'other.qcow2': Buffer.from('x') }, 'sha512'));
    const events: string[] = [];
    const rec = await ensureImage(f.paths, 'debian-12', { arch: 'x86_64', onEvent: (e) => events.push(e.type) });
    assert.equal(rec.id, sha256(img));
    assert.equal(rec.digest, `sha256:${sha256(img)}`);
    assert.deepEqual(rec.aliases, ['debian-12']);
    assert.equal(rec.format, 'qcow2');
    assert.equal(rec.arch, 'x86_64');
    assert.equal(rec.source.kind, 'alias');
    assert.match(String(rec.source.checksum), /^sha512:/);
    assert.ok(events.includes('progress'));
    // An independent reader sees the same bytes and the same virtual size.
    assert.equal(sha256(await readFile(rec.path)), rec.id);
    assert.equal(qemuInfo(rec.path)['virtual-size'], 16 * 1024 * 1024);
    assert.equal(rec.virtualSize, 16 * 1024 * 1024);
    assert.equal((await stat(rec.path)).mode & 0o777, 0o444);
    const gets = () => f.server.requests.filter((r) => r.path === DEB).length;
    assert.equal(gets(), 1);
    const again = await ensureImage(f.paths, 'bookworm');
    assert.equal(again.id, rec.id);
    assert.equal(gets(), 1);
    assert.equal((await findImage(f.paths, 'debian:12'))?.id, rec.id);
    assert.equal((await findImage(f.paths, rec.id.slice(0, 10)))?.id, rec.id);
    assert.deepEqual(await listTree(join(f.paths.cache, 'downloads')), []);
  } finally {
    await f.done();
  }
});

test('ubuntu through simplestreams takes the newest version; sync fetches a newer one and prune drops the superseded', async () => {
  const f = await setup((u) => `sources:\n  ubuntu:\n    base: ${u}/ubuntu\n`);
  try {
    const v1 = await makeQcow2(f.dir, 'u1', 8);
    const v2 = await makeQcow2(f.dir, 'u2', 8);
    const v3 = await makeQcow2(f.dir, 'u3', 8);
    const publish = (versions: { version: string; data: Buffer }[]) => {
      const ss = simplestreams({
        'com.ubuntu.cloud:server:24.04:amd64': {
          arch: 'amd64',
          release: 'noble',
          version: '24.04',
          versions: versions.map((v) => ({ ...v, path: `server/releases/noble/release-${v.version}/ubuntu-24.04-server-cloudimg-amd64.img` })),
        },
      });
      f.server.put('/ubuntu/streams/v1/index.json', ss.index);
      f.server.put(`/ubuntu/${ss.productsPath}`, ss.products);
      for (const v of versions) f.server.put(`/ubuntu/server/releases/noble/release-${v.version}/ubuntu-24.04-server-cloudimg-amd64.img`, v.data);
    };
    publish([
      { version: '20240101', data: v1 },
      { version: '20240423', data: v2 },
    ]);
    const a = await ensureImage(f.paths, 'ubuntu:24.04', { arch: 'amd64' });
    assert.equal(a.id, sha256(v2));
    assert.equal(a.version, '20240423');
    const none = await syncImages(f.paths);
    assert.deepEqual(none.updated, []);
    assert.equal(none.current.length, 1);
    publish([
      { version: '20240423', data: v2 },
      { version: '20240601', data: v3 },
    ]);
    const dry = await syncImages(f.paths, { dryRun: true });
    assert.equal(dry.available?.length, 1);
    assert.equal((await listImages(f.paths)).length, 1);
    const s = await syncImages(f.paths);
    assert.equal(s.updated.length, 1);
    assert.equal(s.updated[0]!.from, a.id);
    assert.equal(s.updated[0]!.to, sha256(v3));
    const all = await listImages(f.paths);
    assert.equal(all.length, 2);
    const old = all.find((r) => r.id === a.id)!;
    assert.deepEqual(old.aliases, []);
    assert.equal(old.supersededBy, sha256(v3));
    assert.equal((await findImage(f.paths, 'noble'))?.id, sha256(v3));
    const p = await pruneImages(f.paths, { dryRun: true });
    assert.ok(p.removed.some((r) => r.id === a.id));
    assert.equal((await listImages(f.paths)).length, 2, 'dry run removes nothing');
  } finally {
    await f.done();
  }
});

test('fedora through releases.json, rocky through a BSD CHECKSUM file, aarch64 names', async () => {
  const f = await setup((u) => `sources:\n  fedora:\n    base: ${u}/fedora\n  rocky:\n    base: ${u}/rocky\n`);
  try {
    const fed = await makeQcow2(f.dir, 'fed', 8);
    const rocky = await makeQcow2(f.dir, 'rocky', 8);
    const link = `${f.server.url}/pub/fedora/linux/releases/41/Cloud/aarch64/images/Fedora-Cloud-Base-Generic-41-1.4.aarch64.qcow2`;
    f.server.put(
      '/fedora/releases.json',
      JSON.stringify([
        { version: '41', arch: 'aarch64', link: link.replace('.qcow2', '.raw.xz'), variant: 'Cloud', subvariant: 'Cloud_Base', sha256: 'f'.repeat(64), size: '1' },
        { version: '41', arch: 'aarch64', link, variant: 'Cloud', subvariant: 'Cloud_Base', sha256: sha256(fed), size: String(fed.length) },
        { version: '41', arch: 'x86_64', link: 'http://127.0.0.1:1/nope.qcow2', variant: 'Cloud', subvariant: 'Cloud_Base', sha256: 'a'.repeat(64) },
      ]),
    );
    f.server.put(new URL(link).pathname, fed);
    const r = await ensureImage(f.paths, 'fedora:41', { arch: 'aarch64' });
    assert.equal(r.id, sha256(fed));
    assert.equal(r.arch, 'aarch64');
    assert.equal(r.version, '41-1.4');
    const name = 'Rocky-9-GenericCloud-Base.latest.aarch64.qcow2';
    f.server.put(`/rocky/9/images/aarch64/${name}`, rocky);
    f.server.put(`/rocky/9/images/aarch64/${name}.CHECKSUM`, bsdChecksumFile({ [name]: rocky }));
    const k = await ensureImage(f.paths, 'rocky:9', { arch: 'arm64' });
    assert.equal(k.id, sha256(rocky));
    await assert.rejects(ensureImage(f.paths, 'rocky:9', { arch: 'x86_64' }), code('HTTP_ERROR'));
  } finally {
    await f.done();
  }
});

test('xz, gzip and zstd downloads are decompressed by magic bytes; the id is the digest of the stored image', async () => {
  const f = await setup();
  try {
    const img = await makeQcow2(f.dir, 'z', 8);
    await writeFile(join(f.dir, 'img'), img);
    for (const [tool, ext] of [
      ['xz', 'xz'],
      ['gzip', 'gz'],
      ['zstd', 'zst'],
    ] as const) {
      const packed = execFileSync(tool, ['-c', join(f.dir, 'img')], { maxBuffer: 1 << 28 });
      f.server.put(`/img.qcow2.${ext}`, packed);
      const r = await ensureImage(f.paths, `${f.server.url}/img.qcow2.${ext}`, { checksum: `sha256:${sha256(packed)}` });
      assert.equal(r.id, sha256(img), tool);
      assert.equal(r.format, 'qcow2');
      assert.equal(sha256(await readFile(r.path)), sha256(img));
    }
    assert.equal((await listImages(f.paths)).length, 1, 'same content, one image');
    assert.deepEqual(await listTree(f.paths.cache), [], 'no temp files left in the cache');
  } finally {
    await f.done();
  }
});

test('a connection cut midway is resumed with Range and the result verifies', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'cut', 32, 'abcdefgh');
    const big = Buffer.concat([img, Buffer.alloc(0)]);
    f.server.put(DEB, big);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': big }, 'sha512'));
    f.server.fault(DEB, { cutAfter: Math.floor(big.length / 3), times: 1 });
    f.server.fault(DEB, { cutAfter: 1000, times: 1 });
    const r = await ensureImage(f.paths, 'debian-12', { arch: 'x86_64' });
    assert.equal(r.id, sha256(big));
    const reqs = f.server.requests.filter((q) => q.path === DEB);
    assert.equal(reqs.length, 3);
    assert.equal(reqs[0]!.range, undefined);
    assert.equal(reqs[1]!.range, `bytes=${Math.floor(big.length / 3)}-`);
    assert.ok(reqs[1]!.ifRange, 'If-Range guards the resume');
    assert.equal(reqs[2]!.status, 206);
  } finally {
    await f.done();
  }
});

test('corrupt bytes and a wrong checksum are refused; the store and the cache stay as they were', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'bad', 8);
    f.server.put(DEB, img);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    const before = await listTree(f.paths.home);
    f.server.fault(DEB, { corruptAt: 70000 });
    await assert.rejects(ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }), (e: unknown) => {
      code('CHECKSUM_MISMATCH')(e);
      assert.match((e as Error).message, /does not match its checksum: expected sha512:/);
      return true;
    });
    const after = (await listTree(f.paths.home)).filter((p) => !p.endsWith('/'));
    assert.deepEqual(after, before);
    assert.deepEqual(await listImages(f.paths), []);
    f.server.clearFaults();
    f.server.put('/x.qcow2', img);
    await assert.rejects(ensureImage(f.paths, `${f.server.url}/x.qcow2`, { checksum: `sha256:${'0'.repeat(64)}` }), code('CHECKSUM_MISMATCH'));
    assert.deepEqual(await listTree(f.paths.home), before);
    // Not a disk image, though the checksum matches.
    const text = Buffer.from('<html>this is not a disk</html>\n');
    f.server.put('/page.qcow2', text);
    await assert.rejects(ensureImage(f.paths, `${f.server.url}/page.qcow2`, { checksum: `sha256:${sha256(text)}` }), code('NOT_A_DISK_IMAGE'));
    assert.deepEqual(await listTree(f.paths.home), before);
  } finally {
    await f.done();
  }
});

test('HTTP errors: 404 fails at once, 500 is retried, an unreachable host is named', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'e', 8);
    f.server.put('/d.qcow2', img);
    const cs = `sha256:${sha256(img)}`;
    await assert.rejects(ensureImage(f.paths, `${f.server.url}/missing.qcow2`, { checksum: cs }), (e: unknown) => {
      code('HTTP_ERROR')(e);
      assert.match((e as Error).message, /HTTP 404/);
      return true;
    });
    assert.equal(f.server.requests.filter((r) => r.path === '/missing.qcow2').length, 1);
    f.server.fault('/d.qcow2', { status: 500, times: 2 });
    const r = await ensureImage(f.paths, `${f.server.url}/d.qcow2`, { checksum: cs });
    assert.equal(r.id, sha256(img));
    assert.equal(f.server.requests.filter((q) => q.path === '/d.qcow2').length, 3);
    f.server.fault('/debian/bookworm/latest/SHA512SUMS', { status: 503 });
    await assert.rejects(ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }), (e: unknown) => {
      code('HTTP_ERROR')(e);
      assert.match((e as Error).message, /HTTP 503/);
      return true;
    });
    await assert.rejects(ensureImage(f.paths, 'http://127.0.0.1:1/x.qcow2', { checksum: cs }), (e: unknown) => {
      code('HOST_UNREACHABLE')(e);
      assert.match((e as Error).message, /127\.0\.0\.1:1\/x\.qcow2: connection refused/);
      return true;
    });
    await assert.rejects(ensureImage(f.paths, 'debian-14'), (e: unknown) => {
      code('UNKNOWN_IMAGE')(e);
      assert.match((e as KumoError).hint ?? '', /debian-12/);
      return true;
    });
  } finally {
    await f.done();
  }
});

test('a URL needs a checksum: found beside it (SHA256SUMS), or refused', async () => {
  const f = await setup();
  try {
    const img = await makeQcow2(f.dir, 'u', 8);
    f.server.put('/a/disk.qcow2', img);
    await assert.rejects(ensureImage(f.paths, `${f.server.url}/a/disk.qcow2`), code('CHECKSUM_REQUIRED'));
    f.server.put('/a/SHA256SUMS', sumsFile({ 'disk.qcow2': img }));
    const r = await ensureImage(f.paths, `${f.server.url}/a/disk.qcow2`);
    assert.equal(r.id, sha256(img));
    assert.equal(r.source.kind, 'url');
    assert.equal((await findImage(f.paths, `${f.server.url}/a/disk.qcow2`))?.id, r.id);
  } finally {
    await f.done();
  }
});

test('two launches needing the same image download it once (same process)', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'twice', 8);
    f.server.put(DEB, img);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    f.server.fault(DEB, { rateBytesPerSec: 2 * 1024 * 1024 });
    const [a, b, c] = await Promise.all([
      ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }),
      ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }),
      ensureImage(f.paths, 'bookworm', { arch: 'x86_64' }),
    ]);
    assert.equal(a.id, b.id);
    assert.equal(a.id, c.id);
    assert.equal(f.server.requests.filter((r) => r.path === DEB).length, 1);
  } finally {
    await f.done();
  }
});

test('Ctrl-C mid-download: interrupted, nothing in the store; the next pull resumes', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'int', 8, 'xyz');
    f.server.put(DEB, img);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    f.server.fault(DEB, { rateBytesPerSec: 256 * 1024, times: 1 });
    const ac = new AbortController();
    let seen = 0;
    const p = ensureImage(f.paths, 'debian-12', {
      arch: 'x86_64',
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'progress' && e.current > 100_000 && !ac.signal.aborted) {
          seen = e.current;
          ac.abort();
        }
      },
    });
    await assert.rejects(p, code('INTERRUPTED'));
    assert.ok(seen > 0);
    assert.deepEqual(await listImages(f.paths), []);
    assert.deepEqual((await listTree(f.paths.images)).filter((x) => !x.startsWith('.')), []);
    const r = await ensureImage(f.paths, 'debian-12', { arch: 'x86_64' });
    assert.equal(r.id, sha256(img));
    const reqs = f.server.requests.filter((q) => q.path === DEB);
    assert.equal(reqs.length, 2);
    assert.match(reqs[1]!.range ?? '', /^bytes=\d+-$/);
  } finally {
    await f.done();
  }
});
