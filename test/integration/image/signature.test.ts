/**
 * Signed checksum files, verified with gpgv against the catalog entry's keyring: keys made by the
 * test (gpg --quick-gen-key in a temp GNUPGHOME, exported as a keyring file), an image and its
 * checksum file served from 127.0.0.1. A good detached or clearsigned signature stores the image
 * with verifiedBy 'signature' and the signer's fingerprint; a tampered checksum file, a file
 * signed by a key not in the keyring, a missing signature and a missing keyring are typed errors
 * and nothing is stored (the image is not even downloaded).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureImage, listImages } from '../../../src/image/index.js';
import { KumoError } from '../../../src/core/errors.js';
import { sha256, sumsFile, bsdChecksumFile } from '../../helpers/http-server.js';
import { setup, makeQcow2, type Fixture } from './fixture.js';

const DEB = '/debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2';
const SUMS = '/debian/bookworm/latest/SHA512SUMS';
const SIG = '/debian/bookworm/latest/SHA512SUMS.sign';
const MY = '/debian/my/img.qcow2';
const CHECKSUM = '/debian/my/CHECKSUM';

let gnupg = '';
const keys: Record<'good' | 'other', string> = { good: '', other: '' };
let keyring = '';

function gpg(args: string[], input?: string | Buffer): Buffer {
  return execFileSync('gpg', ['--batch', '--homedir', gnupg, '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function makeKey(uid: string): string {
  gpg(['--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
  const out = gpg(['--list-keys', '--with-colons', uid]).toString();
  return /^fpr:+([0-9A-F]{40,64}):/m.exec(out)![1]!;
}

const detachSign = (key: string, data: string | Buffer) => gpg(['--armor', '--local-user', key, '--detach-sign', '--output', '-'], data).toString();
const clearSign = (key: string, data: string) => gpg(['--local-user', key, '--clearsign', '--output', '-'], data).toString();

before(async () => {
  gnupg = await mkdtemp(join(tmpdir(), 'kumo-gnupg-'));
  keys.good = makeKey('kumo cloud test <good@example.org>');
  keys.other = makeKey('someone else <other@example.org>');
  keyring = join(gnupg, 'vendor-keyring.gpg');
  await writeFile(keyring, gpg(['--export', keys.good])); // only the vendor's key
});

after(async () => {
  // gpg started an agent for this home: stop it before the home goes
  try {
    execFileSync('gpgconf', ['--homedir', gnupg, '--kill', 'all'], { stdio: 'ignore' });
  } catch {
    /* none running */
  }
  await rm(gnupg, { recursive: true, force: true });
});

const catalog = (kr: () => string) => (u: string) =>
  [
    'sources:',
    '  debian:',
    `    base: ${u}/debian`,
    `    keyring: ${kr()}`,
    '    keyringPackage: kumo-test-keyring',
    'aliases:',
    '  debian-12:',
    '    signature: detached',
    '    signatureFile: bookworm/latest/SHA512SUMS.sign',
    '  mylinux:',
    '    source: debian',
    '    path: my/img.qcow2',
    '    sums: my/CHECKSUM',
    '    signature: clearsigned',
    '    arches: [x86_64]',
    '',
  ].join('\n');

function code(c: string) {
  return (e: unknown) => {
    assert.ok(e instanceof KumoError, String(e));
    assert.equal(e.code, c, e.message);
    return true;
  };
}

async function nothingStored(f: Fixture, path: string) {
  assert.deepEqual(await listImages(f.paths), []);
  assert.equal(f.server.requests.filter((r) => r.path === path).length, 0, 'the image was not downloaded');
}

test('a good detached signature: stored with verifiedBy signature and the signer fingerprint', async () => {
  const f = await setup(catalog(() => keyring));
  try {
    const img = await makeQcow2(f.dir, 'deb', 8);
    const sums = sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512');
    f.server.put(DEB, img);
    f.server.put(SUMS, sums);
    f.server.put(SIG, detachSign(keys.good, sums));
    const rec = await ensureImage(f.paths, 'debian-12', { arch: 'x86_64' });
    assert.equal(rec.id, sha256(img));
    assert.equal(rec.source.verifiedBy, 'signature');
    assert.equal(rec.source.signedBy, keys.good);
    // and it is in the stored metadata, which `kumo image info` shows
    const meta = JSON.parse(await readFile(join(f.paths.images, `${rec.id}.json`), 'utf8'));
    assert.equal(meta.source.verifiedBy, 'signature');
    assert.equal(meta.source.signedBy, keys.good);
  } finally {
    await f.done();
  }
});

test('a tampered checksum file (the signature is of the original) is refused: SIGNATURE_BAD, nothing stored', async () => {
  const f = await setup(catalog(() => keyring));
  try {
    const img = await makeQcow2(f.dir, 'deb', 8);
    const evil = await makeQcow2(f.dir, 'evil', 8);
    const sums = sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512');
    f.server.put(DEB, evil);
    f.server.put(SUMS, sumsFile({ 'debian-12-genericcloud-amd64.qcow2': evil }, 'sha512'));
    f.server.put(SIG, detachSign(keys.good, sums));
    await assert.rejects(ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }), code('SIGNATURE_BAD'));
    await nothingStored(f, DEB);
  } finally {
    await f.done();
  }
});

test('a checksum file signed by a key not in the keyring is refused: SIGNATURE_UNKNOWN_KEY', async () => {
  const f = await setup(catalog(() => keyring));
  try {
    const img = await makeQcow2(f.dir, 'deb', 8);
    const sums = sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512');
    f.server.put(DEB, img);
    f.server.put(SUMS, sums);
    f.server.put(SIG, detachSign(keys.other, sums));
    await assert.rejects(ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }), (e: unknown) => code('SIGNATURE_UNKNOWN_KEY')(e) && (e as KumoError).message.includes(keys.other.slice(-16)));
    await nothingStored(f, DEB);
  } finally {
    await f.done();
  }
});

test('no signature where the catalog says one is expected: SIGNATURE_MISSING (detached: no .sign; clearsigned: a plain file)', async () => {
  const f = await setup(catalog(() => keyring));
  try {
    const img = await makeQcow2(f.dir, 'deb', 8);
    f.server.put(DEB, img);
    f.server.put(SUMS, sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    await assert.rejects(ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }), code('SIGNATURE_MISSING'));
    f.server.put(MY, img);
    f.server.put(CHECKSUM, bsdChecksumFile({ 'img.qcow2': img }));
    await assert.rejects(ensureImage(f.paths, 'mylinux', { arch: 'x86_64' }), code('SIGNATURE_MISSING'));
    await nothingStored(f, DEB);
    await nothingStored(f, MY);
  } finally {
    await f.done();
  }
});

test('clearsigned CHECKSUM: only the signed text counts (a line added after the signature is ignored)', async () => {
  const f = await setup(catalog(() => keyring));
  try {
    const img = await makeQcow2(f.dir, 'my', 8);
    const evil = await makeQcow2(f.dir, 'evil', 8);
    const signed = clearSign(keys.good, bsdChecksumFile({ 'img.qcow2': img }));
    f.server.put(MY, img);
    // An attacker appends a line naming other bytes; parsed with the rest, it would win.
    f.server.put(CHECKSUM, signed + `SHA256 (img.qcow2) = ${sha256(evil)}\n`);
    const rec = await ensureImage(f.paths, 'mylinux', { arch: 'x86_64' });
    assert.equal(rec.id, sha256(img));
    assert.equal(rec.source.verifiedBy, 'signature');
    assert.equal(rec.source.signedBy, keys.good);
  } finally {
    await f.done();
  }
});

test('clearsigned by another key, or with the signed text edited: refused, nothing stored', async () => {
  const f = await setup(catalog(() => keyring));
  try {
    const img = await makeQcow2(f.dir, 'my', 8);
    f.server.put(MY, img);
    f.server.put(CHECKSUM, clearSign(keys.other, bsdChecksumFile({ 'img.qcow2': img })));
    await assert.rejects(ensureImage(f.paths, 'mylinux', { arch: 'x86_64' }), code('SIGNATURE_UNKNOWN_KEY'));
    const good = clearSign(keys.good, bsdChecksumFile({ 'img.qcow2': img }));
    f.server.put(CHECKSUM, good.replace(/= ([0-9a-f])/, (_m, c: string) => `= ${c === '0' ? '1' : '0'}`));
    await assert.rejects(ensureImage(f.paths, 'mylinux', { arch: 'x86_64' }), code('SIGNATURE_BAD'));
    await nothingStored(f, MY);
  } finally {
    await f.done();
  }
});

test('a missing keyring is a typed error naming the package that provides it', async () => {
  const f = await setup(catalog(() => join(gnupg, 'no-such-keyring.gpg')));
  try {
    const img = await makeQcow2(f.dir, 'deb', 8);
    const sums = sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512');
    f.server.put(DEB, img);
    f.server.put(SUMS, sums);
    f.server.put(SIG, detachSign(keys.good, sums));
    await assert.rejects(ensureImage(f.paths, 'debian-12', { arch: 'x86_64' }), (e: unknown) => code('SIGNING_KEYRING_MISSING')(e) && /apt-get install kumo-test-keyring/.test((e as KumoError).hint ?? ''));
    await nothingStored(f, DEB);
  } finally {
    await f.done();
  }
});

test('an unsigned catalog entry is stored with verifiedBy checksum', async () => {
  const f = await setup((u) => `sources:\n  debian:\n    base: ${u}/debian\n`);
  try {
    const img = await makeQcow2(f.dir, 'deb', 8);
    f.server.put(DEB, img);
    f.server.put(SUMS, sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    const rec = await ensureImage(f.paths, 'debian-12', { arch: 'x86_64' });
    assert.equal(rec.source.verifiedBy, 'checksum');
    assert.equal(rec.source.signedBy, undefined);
  } finally {
    await f.done();
  }
});
