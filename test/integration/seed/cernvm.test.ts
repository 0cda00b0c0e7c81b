/**
 * The CernVM context seed (--seed-format cernvm) written by kumo and read back, byte for byte, by
 * three independent ISO readers: isoinfo (genisoimage, Rock Ridge and Joliet trees), xorriso and
 * bsdtar (libarchive). All three are installed by scripts/setup.sh (scripts/programs.txt): a
 * missing one fails the test, it is never skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, readdir, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { writeSeed, seedFiles, CERNVM_PATHS, type SeedSpec } from '../../../src/seed/index.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl kumo@test';
const SPEC: SeedSpec = {
  format: 'cernvm',
  instanceId: 'i-cernvm-42',
  hostname: 'cvm42',
  sshAuthorizedKeys: [KEY],
  userData: '#!/bin/sh\necho organisations=ATLAS > /etc/cvm-context\n',
  mtime: new Date('2024-05-06T07:08:09Z'),
};

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const shBuf = (cmd: string, args: string[]): Buffer => execFileSync(cmd, args, { maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });

async function walk(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of await walk(p, prefix + e.name + '/')) out.set(k, v);
    else out.set(prefix + e.name, await readFile(p));
  }
  return out;
}

async function withSeed(fn: (iso: string, dir: string, want: Map<string, Buffer>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-cernvm-'));
  try {
    const iso = join(dir, 'context.iso');
    await writeSeed(SPEC, iso);
    const want = new Map(seedFiles(SPEC).files.map((f) => [f.path, Buffer.from(f.data as string)]));
    assert.deepEqual([...want.keys()].sort(), [...CERNVM_PATHS].sort());
    await fn(iso, dir, want);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('isoinfo: label config-2, exactly the five files (Rock Ridge and Joliet), the same bytes', async () => {
  await withSeed(async (iso, _dir, want) => {
    assert.match(sh('isoinfo', ['-d', '-i', iso]), /Volume id: config-2/);
    for (const tree of ['-R', '-J']) {
      const files = sh('isoinfo', [tree, '-f', '-i', iso])
        .split('\n')
        .filter(Boolean)
        .filter((p) => !['/ec2', '/ec2/latest', '/openstack', '/openstack/latest'].includes(p));
      assert.deepEqual(files.sort(), [...CERNVM_PATHS].map((p) => '/' + p).sort(), `isoinfo ${tree}`);
      for (const [p, b] of want) assert.deepEqual(shBuf('isoinfo', [tree, '-i', iso, '-x', '/' + p]), b, `isoinfo ${tree} -x ${p}`);
    }
    const ud1 = shBuf('isoinfo', ['-R', '-i', iso, '-x', '/ec2/latest/user-data']);
    const ud2 = shBuf('isoinfo', ['-R', '-i', iso, '-x', '/openstack/latest/user_data']);
    assert.deepEqual(ud1, ud2, 'identical user data in both layouts');
    assert.match(ud1.toString(), /organisations=ATLAS/);
  });
});

test('xorriso extracts exactly the five files with the same bytes', async () => {
  await withSeed(async (iso, dir, want) => {
    const out = join(dir, 'xorriso');
    await mkdir(out);
    sh('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out]);
    const got = await walk(out);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [p, b] of want) assert.deepEqual(got.get(p), b, `xorriso ${p}`);
  });
});

test('bsdtar (libarchive) extracts exactly the five files with the same bytes; the JSON parses', async () => {
  await withSeed(async (iso, dir, want) => {
    const out = join(dir, 'bsdtar');
    await mkdir(out);
    sh('bsdtar', ['-xf', iso, '-C', out]);
    const got = await walk(out);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [p, b] of want) assert.deepEqual(got.get(p), b, `bsdtar ${p}`);
    assert.equal(JSON.parse(got.get('ec2/latest/meta-data.json')!.toString())['instance-id'], 'i-cernvm-42');
    assert.equal(JSON.parse(got.get('openstack/latest/meta_data.json')!.toString()).uuid, 'i-cernvm-42');
  });
});
