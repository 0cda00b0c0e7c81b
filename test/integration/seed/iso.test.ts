/**
 * The ISO writer read back by independent readers: isoinfo (genisoimage), xorriso, bsdtar
 * (libarchive), fuseiso (a FUSE mount), blkid, and the kernel's isofs when this kernel has it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile, mkdir, readdir, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeIso, writeSeed, type IsoFile } from '../../../src/seed/index.js';
import { randomTree } from '../../unit/seed/random-tree.js';

const MTIME = new Date('2024-05-06T07:08:09Z');

function sh(cmd: string, args: string[], opts: { maxBuffer?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}
function shBuf(cmd: string, args: string[]): Buffer {
  return execFileSync(cmd, args, { maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-iso-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function walk(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of await walk(p, prefix + e.name + '/')) out.set(k, v);
    else out.set(prefix + e.name, await readFile(p));
  }
  return out;
}

const bytes = (f: IsoFile) => (typeof f.data === 'string' ? Buffer.from(f.data) : Buffer.from(f.data));

const SAMPLE: IsoFile[] = [
  { path: 'user-data', data: '#cloud-config\nhostname: t\n' },
  { path: 'meta-data', data: 'instance-id: i-1\n' },
  { path: 'network-config', data: 'version: 2\n' },
  { path: 'openstack/latest/meta_data.json', data: '{"uuid":"i-1"}\n' },
  { path: 'openstack/latest/user_data', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
  { path: 'a/b/c/d/e/f/g/h/i/j/deep-file.txt', data: 'deep\n' },
  { path: 'Ünïcødé names/中文.txt', data: 'u\n' },
  { path: 'x'.repeat(180) + '.long', data: 'long\n' },
  { path: 'empty', data: '' },
];

test('isoinfo reads the Rock Ridge, Joliet and plain trees, the label and the contents', async () => {
  await withTmp(async (dir) => {
    const iso = join(dir, 'seed.iso');
    await writeIso(SAMPLE, iso, { volumeId: 'cidata', mtime: MTIME });
    const d = sh('isoinfo', ['-d', '-i', iso]);
    assert.match(d, /Volume id: cidata/);
    assert.match(d, /Joliet with UCS level 3 found/);
    assert.match(d, /Rock Ridge signatures version 1 found/);
    const rrList = sh('isoinfo', ['-R', '-f', '-i', iso]).split('\n').filter(Boolean);
    for (const f of SAMPLE) assert.ok(rrList.includes('/' + f.path), `RR: ${f.path}`);
    const jList = sh('isoinfo', ['-J', '-f', '-i', iso]).split('\n').filter(Boolean);
    // isoinfo prints Joliet names in its own 8-bit charset: compare the ASCII ones
    for (const f of SAMPLE) if (/^[\x20-\x7e]*$/.test(f.path) && f.path.split('/').every((c) => c.length <= 64)) assert.ok(jList.includes('/' + f.path), `Joliet: ${f.path}`);
    assert.ok(jList.includes('/' + 'x'.repeat(64)), 'a long name is shortened to 64 characters in Joliet');
    const plain = sh('isoinfo', ['-f', '-i', iso]);
    assert.match(plain, /^\/USER_DAT\.;1$/m);
    for (const f of SAMPLE) {
      assert.deepEqual(shBuf('isoinfo', ['-R', '-i', iso, '-x', '/' + f.path]), bytes(f), `RR -x ${f.path}`);
    }
    assert.deepEqual(shBuf('isoinfo', ['-J', '-i', iso, '-x', '/openstack/latest/meta_data.json']), bytes(SAMPLE[3]!));
    const l = sh('isoinfo', ['-R', '-l', '-i', iso]);
    assert.match(l, /-rwxr-xr-x\s+1\s+0\s+0\s+18 May\s+6 2024 .* user_data/);
  });
});

test('xorriso lists and extracts the tree without complaint', async () => {
  await withTmp(async (dir) => {
    const iso = join(dir, 'seed.iso');
    await writeIso(SAMPLE, iso, { volumeId: 'config-2', mtime: MTIME });
    const r = spawnSync('xorriso', ['-abort_on', 'NEVER', '-return_with', 'WARNING', '32', '-indev', iso, '-find', '/', '-type', 'f'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /SORRY|FAILURE|WARNING/);
    assert.match(r.stderr, /Volume id\s*:\s*'config-2'/);
    const listed = r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^'\/|'$/g, ''));
    assert.deepEqual(listed.sort(), SAMPLE.map((f) => f.path).sort());
    const out = join(dir, 'x');
    sh('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
    const got = await walk(out);
    assert.equal(got.size, SAMPLE.length);
    for (const f of SAMPLE) assert.deepEqual(got.get(f.path), bytes(f), f.path);
    assert.equal((await stat(join(out, 'openstack/latest/user_data'))).mode & 0o777, 0o755);
  });
});

// bsdtar (libarchive-tools) is installed by scripts/setup.sh: a missing one fails, it is never skipped
test('blkid sees the label, bsdtar (libarchive) reads names and contents', async () => {
  await withTmp(async (dir) => {
    for (const label of ['cidata', 'config-2']) {
      const iso = join(dir, `${label}.iso`);
      await writeIso(SAMPLE, iso, { volumeId: label, mtime: MTIME });
      assert.match(sh('blkid', ['-p', iso]), new RegExp(`LABEL="${label}".*TYPE="iso9660"`));
      const out = join(dir, `bsd-${label}`);
      await mkdir(out);
      sh('bsdtar', ['-xf', iso, '-C', out]);
      const got = await walk(out);
      for (const f of SAMPLE) assert.deepEqual(got.get(f.path), bytes(f), f.path);
    }
  });
});

const fuseOk = have('fuseiso') && existsSync('/dev/fuse');
test('a FUSE mount (fuseiso) shows the names and contents', { skip: !fuseOk && 'fuseiso or /dev/fuse is missing' }, async () => {
  await withTmp(async (dir) => {
    const iso = join(dir, 'seed.iso');
    await writeIso(SAMPLE, iso, { volumeId: 'cidata', mtime: MTIME });
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    sh('fuseiso', [iso, mnt]);
    try {
      const got = await walk(mnt);
      for (const f of SAMPLE) assert.deepEqual(got.get(f.path), bytes(f), f.path);
    } finally {
      spawnSync('fusermount', ['-u', mnt]);
    }
  });
});

/**
 * Why the kernel cannot mount an ISO here (undefined when it can). isofs may be built in or a
 * module: when /proc/filesystems lacks it, loading the module is tried (modprobe isofs) before
 * the test is skipped, so a kernel with a loadable isofs runs the test.
 */
const noKernelIso = (() => {
  if (process.getuid?.() !== 0) return 'mounting needs root';
  const listed = () => /\biso9660\b/.test(readFileSync('/proc/filesystems', 'utf8'));
  if (listed()) return undefined;
  const mp = spawnSync('modprobe', ['isofs'], { encoding: 'utf8' });
  if (listed()) return undefined;
  return `this kernel has no iso9660 (isofs): not built in, and 'modprobe isofs' ${mp.error ? `could not run (${(mp.error as NodeJS.ErrnoException).code})` : `failed: ${(mp.stderr || '').trim() || `exit ${mp.status}`}`}`;
})();
test('the kernel mounts it (mount -o loop,ro): Rock Ridge names, and Joliet with norock', { skip: noKernelIso }, async () => {
  await withTmp(async (dir) => {
    const iso = join(dir, 'seed.iso');
    await writeIso(SAMPLE, iso, { volumeId: 'cidata', mtime: MTIME });
    for (const opts of ['loop,ro', 'loop,ro,norock']) {
      const mnt = join(dir, `mnt-${opts}`);
      await mkdir(mnt);
      sh('mount', ['-o', opts, iso, mnt]);
      try {
        const got = await walk(mnt);
        for (const f of SAMPLE) if (opts === 'loop,ro' || f.path.split('/').every((c) => c.length <= 64)) assert.deepEqual(got.get(f.path), bytes(f), `${opts}: ${f.path}`);
      } finally {
        spawnSync('umount', [mnt]);
      }
    }
  });
});

test('property: random trees round-trip through xorriso, bsdtar and isoinfo -J (seeded)', async () => {
  await withTmp(async (dir) => {
    for (let seed = 1000; seed < 1012; seed++) {
      const files = randomTree(seed, 30);
      const iso = join(dir, `t${seed}.iso`);
      await writeIso(files, iso, { volumeId: 'cidata', mtime: MTIME });
      const out = join(dir, `x${seed}`);
      sh('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
      const got = await walk(out);
      assert.equal(got.size, files.length, `seed ${seed}`);
      for (const f of files) assert.deepEqual(got.get(f.path), bytes(f), `seed ${seed}: ${f.path}`);
      // Joliet: every name that fits Joliet is there exactly
      const j = new Set(sh('isoinfo', ['-J', '-f', '-i', iso]).split('\n'));
      for (const f of files) if (/^[\x20-\x7e]*$/.test(f.path) && f.path.split('/').every((c) => c.length <= 64)) assert.ok(j.has('/' + f.path), `seed ${seed} Joliet: ${f.path}`);
      await rm(out, { recursive: true });
      // libarchive too, always (setup installs it; no silent drop of a reader)
      await mkdir(out);
      sh('bsdtar', ['-xf', iso, '-C', out]);
      const viaLibarchive = await walk(out);
      assert.equal(viaLibarchive.size, files.length, `seed ${seed} (bsdtar)`);
      for (const f of files) assert.deepEqual(viaLibarchive.get(f.path), bytes(f), `seed ${seed} (bsdtar): ${f.path}`);
      await rm(out, { recursive: true });
    }
  });
});

test('files of tens of MiB are written and read back intact', async () => {
  await withTmp(async (dir) => {
    const big = Buffer.alloc(40 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const iso = join(dir, 'big.iso');
    await writeIso([{ path: 'big/blob.bin', data: big }, { path: 'small', data: 's' }], iso, { volumeId: 'cidata', mtime: MTIME });
    assert.ok(shBuf('isoinfo', ['-R', '-i', iso, '-x', '/big/blob.bin']).equals(big));
    assert.equal(shBuf('isoinfo', ['-R', '-i', iso, '-x', '/small']).toString(), 's');
  });
});

test('writeSeed: NoCloud and ConfigDrive seeds as cloud-init finds them; 0600; bad input leaves nothing', async () => {
  await withTmp(async (dir) => {
    const nc = join(dir, 'nocloud.iso');
    await writeSeed({ instanceId: 'i-abc', hostname: 'web', sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== me'], mtime: MTIME }, nc);
    assert.match(sh('blkid', ['-p', nc]), /LABEL="cidata"/);
    assert.equal((await stat(nc)).mode & 0o777, 0o600);
    assert.deepEqual(sh('isoinfo', ['-R', '-f', '-i', nc]).split('\n').filter(Boolean).sort(), ['/meta-data', '/user-data']);
    assert.match(sh('isoinfo', ['-R', '-i', nc, '-x', '/meta-data']), /instance-id: i-abc/);
    const cd = join(dir, 'cd.iso');
    await writeSeed({ format: 'configdrive', instanceId: 'i-def', hostname: 'db', mtime: MTIME }, cd);
    assert.match(sh('blkid', ['-p', cd]), /LABEL="config-2"/);
    assert.deepEqual(
      sh('isoinfo', ['-R', '-f', '-i', cd]).split('\n').filter((l) => l && !/\/(latest|openstack|ec2)$/.test(l)).sort(),
      ['/ec2/latest/meta-data.json', '/ec2/latest/user-data', '/openstack/latest/meta_data.json', '/openstack/latest/user_data'],
    );
    assert.equal(JSON.parse(sh('isoinfo', ['-R', '-i', cd, '-x', '/openstack/latest/meta_data.json'])).uuid, 'i-def');
    // invalid user-data: an error, and no output or temp file
    const bad = join(dir, 'bad.iso');
    await assert.rejects(writeSeed({ instanceId: 'i-x', userData: '#cloud-config\na: [\n' }, bad), /line \d+, column \d+/);
    await writeFile(join(dir, 'keep.iso'), 'old');
    await assert.rejects(writeSeed({ instanceId: 'i-x', userData: 'plain text' }, join(dir, 'keep.iso')), /not in a format/);
    assert.equal(await readFile(join(dir, 'keep.iso'), 'utf8'), 'old');
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('.tmp-') || f === 'bad.iso'), []);
  });
});
