/**
 * Base images must be self-contained (issue 12, High 1): an image that references another host
 * file (a qcow2 backing file or external data file, a VMDK descriptor's extents or parent) is
 * refused on every path into the store (import, a local file, a URL + checksum, an alias), before
 * any qemu tool opens it, and nothing is left in KUMO_HOME afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureImage, importImage, listImages } from '../../../src/image/index.js';
import { qemuImg } from '../../../src/disk/index.js';
import { KumoError } from '../../../src/core/errors.js';
import { kumo } from '../../helpers/cli.js';
import { sha256, sumsFile } from '../../helpers/http-server.js';
import { setup, makeQcow2, qemuInfo, listTree, debianCatalog, type Fixture } from './fixture.js';

const DEB = '/debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2';
const env = { KUMO_RETRY_BACKOFF_MS: '20' };

function notSelfContained(...mentions: RegExp[]) {
  return (e: unknown) => {
    assert.ok(e instanceof KumoError, String(e));
    assert.equal(e.code, 'IMAGE_NOT_SELF_CONTAINED', e.message);
    for (const m of mentions) assert.match(e.message, m);
    assert.match(e.hint ?? '', /nothing was stored/);
    return true;
  };
}

/** Every file (not folder) under KUMO_HOME. */
async function homeFiles(f: Fixture): Promise<string[]> {
  return (await listTree(f.paths.home)).filter((p) => !p.endsWith('/'));
}

/** Try the file on every path into the store: import, local file, URL + checksum, an alias. */
async function refusedEverywhere(f: Fixture, file: string, ...mentions: RegExp[]): Promise<void> {
  const before = await homeFiles(f);
  const body = await readFile(file);
  await assert.rejects(importImage(f.paths, file, { name: 'evil' }), notSelfContained(...mentions));
  await assert.rejects(ensureImage(f.paths, file), notSelfContained(...mentions));
  f.server.put('/evil.img', body);
  await assert.rejects(ensureImage(f.paths, `${f.server.url}/evil.img`, { checksum: `sha256:${sha256(body)}` }), notSelfContained(...mentions));
  f.server.put(DEB, body);
  f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': body }, 'sha512'));
  await assert.rejects(ensureImage(f.paths, 'debian-12', { arch: 'x86_64', refresh: true }), notSelfContained());
  const cli = await kumo(['image', 'import', file, '--name', 'evil'], { home: f.paths.home, env });
  assert.notEqual(cli.code, 0);
  assert.match(cli.stderr, /not a self-contained disk image/);
  for (const m of mentions) assert.match(cli.stderr, m);
  assert.deepEqual(await listImages(f.paths), []);
  assert.deepEqual((await homeFiles(f)).filter((p) => !p.startsWith('cache/locks/')), before, 'nothing stored, no temp file left');
  assert.deepEqual(await listTree(f.paths.images), []);
}

test('a qcow2 with a backing file (a host key) is refused on every path, nothing is stored', async () => {
  const f = await setup(debianCatalog);
  try {
    await mkdir(join(f.dir, 'keys'));
    await writeFile(join(f.dir, 'keys', 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n');
    await mkdir(join(f.dir, 'img'));
    const x = join(f.dir, 'img', 'x.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '../keys/id_ed25519', '-F', 'raw', x, '1G']);
    await refusedEverywhere(f, x, /x\.qcow2|evil|debian/, /backing file: '\.\.\/keys\/id_ed25519'/);
    // An absolute backing name, recorded as qcow2: refused the same way.
    const y = join(f.dir, 'img', 'y.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/hostname', '-F', 'qcow2', y, '1G']);
    assert.equal(qemuInfo(y)['backing-filename'], '/etc/hostname');
    await assert.rejects(importImage(f.paths, y, { name: 'y' }), notSelfContained(/backing file: '\/etc\/hostname' \(format qcow2\)/));
    assert.deepEqual(await listTree(f.paths.images), []);
  } finally {
    await f.done();
  }
});

test('a qcow2 with an external data file is refused, nothing is stored', async () => {
  const f = await setup(debianCatalog);
  try {
    const secret = join(f.dir, 'secret.raw');
    await writeFile(secret, Buffer.alloc(1024 * 1024, 's'));
    const x = join(f.dir, 'data.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${secret},data_file_raw=on`, x, '1M']);
    await refusedEverywhere(f, x, /external data file: '.*secret\.raw'/);
  } finally {
    await f.done();
  }
});

test('VMDK descriptors naming host files are refused: a text descriptor, an embedded one, a parent', async () => {
  const f = await setup(debianCatalog);
  try {
    const desc = join(f.dir, 'desc.vmdk');
    await writeFile(
      desc,
      '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW 1 FLAT "/etc/hostname" 0\n\n# The Disk Data Base\n#DDB\nddb.virtualHWVersion = "4"\n',
    );
    await refusedEverywhere(f, desc, /VMDK descriptor/, /'\/etc\/hostname'/);

    // A sparse VMDK whose header hands over to its embedded descriptor (capacity 0), which names /etc/hostname.
    await makeQcow2(f.dir, 'sp', 1);
    const sparse = join(f.dir, 'sparse.vmdk');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vmdk', join(f.dir, 'sp.qcow2'), sparse]);
    const good = await readFile(sparse);
    const embedded = Buffer.from(good);
    embedded.writeBigUInt64LE(0n, 12); // capacity 0
    const text = Buffer.from('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 1 FLAT "/etc/hostname" 0\n\0');
    embedded.fill(0, 0x200, 0x200 + 20 * 512);
    text.copy(embedded, 0x200);
    const e1 = join(f.dir, 'embedded.vmdk');
    await writeFile(e1, embedded);
    await refusedEverywhere(f, e1, /embedded/, /'\/etc\/hostname'/);

    // A sparse VMDK with a parent (parentFileNameHint): QEMU would open it as a backing file.
    const descText = good.toString('latin1', 0x200, 0x200 + 20 * 512);
    const withParent = descText.replace('parentCID=ffffffff', 'parentCID=12345678\nparentFileNameHint="/etc/hostname"');
    const parented = Buffer.from(good);
    parented.write(withParent.slice(0, 20 * 512), 0x200, 'latin1');
    const e2 = join(f.dir, 'parent.vmdk');
    await writeFile(e2, parented);
    await assert.rejects(importImage(f.paths, e2, { name: 'p' }), notSelfContained(/parent \(backing\) file: '\/etc\/hostname'/));
    assert.deepEqual(await listTree(f.paths.images), []);

    // The untouched sparse VMDK, a streamOptimized one and a VHD still import (converted to qcow2).
    const ok1 = await importImage(f.paths, sparse, { name: 'sparse' });
    assert.equal(ok1.format, 'qcow2');
    const stream = join(f.dir, 'stream.vmdk');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vmdk', '-o', 'subformat=streamOptimized', join(f.dir, 'sp.qcow2'), stream]);
    assert.equal((await importImage(f.paths, stream, { name: 'stream' })).format, 'qcow2');
    const vhd = join(f.dir, 'a.vhd');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vpc', join(f.dir, 'sp.qcow2'), vhd]);
    assert.equal((await importImage(f.paths, vhd, { name: 'vhd' })).format, 'qcow2');
    const vhdx = join(f.dir, 'a.vhdx');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'vhdx', join(f.dir, 'sp.qcow2'), vhdx]);
    assert.equal((await importImage(f.paths, vhdx, { name: 'vhdx' })).format, 'qcow2');
    // Differencing VHD (footer disk type 4) and VHDX (file parameters: HasParent) are refused.
    const diffVhd = Buffer.from(await readFile(vhd));
    for (const at of [0, diffVhd.length - 512]) if (diffVhd.toString('latin1', at, at + 8) === 'conectix') diffVhd.writeUInt32BE(4, at + 60);
    await writeFile(join(f.dir, 'diff.vhd'), diffVhd);
    await assert.rejects(importImage(f.paths, join(f.dir, 'diff.vhd'), { name: 'dv' }), notSelfContained(/VHD differencing disk/));
    const diffVhdx = Buffer.from(await readFile(vhdx));
    const fileParams = diffVhdx.indexOf(Buffer.from('3767a1ca36fa434db3b633f0aa44e76b', 'hex')); // its metadata table entry
    const table = diffVhdx.lastIndexOf(Buffer.from('metadata', 'latin1'), fileParams);
    const flagsAt = table + diffVhdx.readUInt32LE(fileParams + 16) + 4;
    diffVhdx.writeUInt32LE(diffVhdx.readUInt32LE(flagsAt) | 2, flagsAt);
    await writeFile(join(f.dir, 'diff.vhdx'), diffVhdx);
    await assert.rejects(importImage(f.paths, join(f.dir, 'diff.vhdx'), { name: 'dx' }), notSelfContained(/VHDX differencing disk/));
  } finally {
    await f.done();
  }
});

test("kumo's own overlay on a stored base still works (its backing file is the store's image)", async () => {
  const f = await setup();
  try {
    await makeQcow2(f.dir, 'base', 8);
    const base = await importImage(f.paths, join(f.dir, 'base.qcow2'), { name: 'base' });
    const overlay = join(f.dir, 'overlay.qcow2');
    await qemuImg.createOverlay(overlay, { backing: base.path, backingFormat: 'qcow2' });
    assert.equal(qemuInfo(overlay)['backing-filename'], base.path);
  } finally {
    await f.done();
  }
});
