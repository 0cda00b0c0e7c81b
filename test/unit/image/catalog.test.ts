import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathsFor } from '../../../src/config/paths.js';
import { loadCatalog, findAlias, suggestAliases, normalizeArch, parseChecksum, parseSumsFile } from '../../../src/image/index.js';
import { compressionOf } from '../../../src/image/decompress.js';
import { ValidationError, KumoError } from '../../../src/core/errors.js';

async function tempHome() {
  const home = await mkdtemp(join(tmpdir(), 'kumo-image-unit-'));
  return { home, paths: pathsFor(home), done: () => rm(home, { recursive: true, force: true }) };
}

test('the built-in catalog has every promised alias for x86_64 and aarch64', async () => {
  const t = await tempHome();
  try {
    const cat = await loadCatalog(t.paths);
    for (const a of ['debian-12', 'debian-13', 'ubuntu:22.04', 'ubuntu:24.04', 'fedora:41', 'centos-stream:9', 'almalinux:9', 'rocky:9', 'opensuse-leap:15.6']) {
      const alias = findAlias(cat, a);
      assert.ok(alias, `alias ${a}`);
      assert.deepEqual(alias.arches.sort(), ['aarch64', 'x86_64']);
      assert.match(cat.sources[alias.source]!.base, /^https:\/\//);
    }
    assert.equal(cat.sources[findAlias(cat, 'ubuntu:24.04')!.source]!.kind, 'simplestreams');
    assert.equal(cat.sources[findAlias(cat, 'fedora:41')!.source]!.kind, 'fedora-releases');
    assert.equal(findAlias(cat, 'bookworm')!.name, 'debian-12');
    assert.equal(findAlias(cat, 'UBUNTU-24.04')!.name, 'ubuntu:24.04');
  } finally {
    await t.done();
  }
});

test('KUMO_HOME/catalog.yaml overrides a base field by field and adds aliases', async () => {
  const t = await tempHome();
  try {
    await writeFile(
      t.paths.catalog,
      'sources:\n  debian:\n    base: http://127.0.0.1:9/mirror\n  mine:\n    kind: sums\n    base: http://127.0.0.1:9/mine\naliases:\n  my-os:\n    source: mine\n    path: os-{arch}.qcow2\n    sums: SHA256SUMS\n    arches: [amd64]\n',
    );
    const cat = await loadCatalog(t.paths);
    assert.equal(cat.sources.debian!.base, 'http://127.0.0.1:9/mirror');
    assert.equal(cat.sources.debian!.kind, 'sums');
    assert.deepEqual(cat.sources.debian!.archNames, { x86_64: 'amd64', aarch64: 'arm64' });
    assert.deepEqual(findAlias(cat, 'my-os')!.arches, ['x86_64']);
    assert.equal(cat.files.length, 2);
  } finally {
    await t.done();
  }
});

test('a bad user catalog reports every problem with its path', async () => {
  const t = await tempHome();
  try {
    await writeFile(t.paths.catalog, 'sources:\n  x:\n    kind: ftp\n    base: nowhere\naliases:\n  a:\n    source: nosuch\n  b:\n    source: x\n    arches: [sparc]\n');
    await assert.rejects(loadCatalog(t.paths), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      const paths = e.issues.map((i) => i.path);
      assert.ok(paths.includes('sources.x.kind'), paths.join());
      assert.ok(paths.includes('sources.x.base'));
      assert.ok(paths.includes('aliases.a.source'));
      assert.ok(paths.includes('aliases.b.arches'));
      return true;
    });
    await writeFile(t.paths.catalog, 'sources: [\n');
    await assert.rejects(loadCatalog(t.paths), (e: unknown) => e instanceof KumoError && e.code === 'CATALOG_INVALID');
  } finally {
    await t.done();
  }
});

test('unknown aliases get close suggestions', async () => {
  const t = await tempHome();
  try {
    const cat = await loadCatalog(t.paths);
    assert.ok(suggestAliases(cat, 'debian-14').includes('debian-12'));
    assert.ok(suggestAliases(cat, 'ubuntu:25.04').includes('ubuntu:24.04'));
    assert.ok(suggestAliases(cat, 'rocky:8').includes('rocky:9'));
    assert.ok(suggestAliases(cat, 'fedora').includes('fedora:41'));
    assert.deepEqual(suggestAliases(cat, 'zzzzzzzz'), []);
  } finally {
    await t.done();
  }
});

test('architectures are normalised and unknown ones refused', () => {
  assert.equal(normalizeArch('amd64'), 'x86_64');
  assert.equal(normalizeArch('ARM64'), 'aarch64');
  assert.throws(() => normalizeArch('sparc'), /unknown architecture 'sparc'/);
});

test('checksums: user syntax, GNU and BSD checksum files, clear-signed files', () => {
  const h = 'a'.repeat(64);
  assert.deepEqual(parseChecksum(`sha256:${h.toUpperCase()}`), { algo: 'sha256', hex: h });
  assert.deepEqual(parseChecksum('b'.repeat(128)), { algo: 'sha512', hex: 'b'.repeat(128) });
  assert.throws(() => parseChecksum('sha256:abc'), /not a checksum/);
  assert.throws(() => parseChecksum('md5:' + 'a'.repeat(32)), /not a checksum/);
  const text = [
    '-----BEGIN PGP SIGNED MESSAGE-----',
    'Hash: SHA256',
    '',
    '# Fedora-Cloud-Base-41.qcow2: 123 bytes',
    `SHA256 (Fedora-Cloud-Base-41.qcow2) = ${'c'.repeat(64)}`,
    `${'d'.repeat(64)}  debian.qcow2`,
    `${'e'.repeat(64)} *./sub/ubuntu.img`,
    '-----BEGIN PGP SIGNATURE-----',
  ].join('\n');
  const m = parseSumsFile(text);
  assert.deepEqual(m.get('Fedora-Cloud-Base-41.qcow2'), { algo: 'sha256', hex: 'c'.repeat(64) });
  assert.deepEqual(m.get('debian.qcow2'), { algo: 'sha256', hex: 'd'.repeat(64) });
  assert.deepEqual(m.get('ubuntu.img'), { algo: 'sha256', hex: 'e'.repeat(64) });
  assert.equal(m.size, 3);
});

test('compression is recognised by magic bytes', () => {
  assert.equal(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0])), 'xz');
  assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
  assert.equal(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(compressionOf(Buffer.from('QFI\xfb\0\0\0\x03', 'latin1')), undefined);
});
