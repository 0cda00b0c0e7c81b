/**
 * The golden-image workflow end to end, with the real CLI and the built test image under TCG:
 * customise an instance (a file written, a .deb installed with dpkg -i), live snapshot +
 * change + restore (the change is gone), capture it (sealed by booting a copy; the source's disk
 * is byte for byte unchanged), launch two instances from the image at once (both have the file
 * and the package; machine-id, ssh host keys and hostname differ), clone the stopped source (new
 * identity), consolidate one instance, remove the golden image, and boot it again (data kept).
 * Boots: source, sealing copy, two launches together, the consolidated one again with the clone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { kumo } from '../helpers/cli.js';
import { testImagePath } from '../helpers/test-image.js';
import { SEAL_HOOK_PATH } from '../../src/golden/seal.js';

let home = '';
let work = '';
let image = '';
const made = new Set<string>();

function k(args: string[], timeoutMs = 1_200_000) {
  return kumo(args, { home, timeoutMs });
}
async function ok(args: string[], timeoutMs?: number): Promise<string> {
  const r = await k(args, timeoutMs);
  assert.equal(r.code, 0, `kumo ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}
async function sh(name: string, command: string): Promise<string> {
  return (await ok(['exec', name, '--', 'sh', '-c', command])).trim();
}
async function sha(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}
function qemuPidsUnder(dir: string): number[] {
  const out: number[] = [];
  for (const p of execFileSync('ps', ['-eo', 'pid=,args=']).toString().split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(p);
    if (m && m[2]!.includes('qemu-system') && m[2]!.includes(dir)) out.push(Number(m[1]));
  }
  return out;
}

/** A tiny .deb, built on the host: /usr/bin/kumo-golden-demo and a data file. */
async function buildDeb(dir: string): Promise<string> {
  const root = join(dir, 'pkg');
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr', 'bin'), { recursive: true });
  await mkdir(join(root, 'usr', 'share', 'kumo-golden-demo'), { recursive: true });
  await writeFile(
    join(root, 'DEBIAN', 'control'),
    ['Package: kumo-golden-demo', 'Version: 1.0', 'Architecture: all', 'Maintainer: kumo <kumo@example.invalid>', 'Description: a package installed into a golden image by the kumo tests', ''].join('\n'),
  );
  await writeFile(join(root, 'usr', 'bin', 'kumo-golden-demo'), '#!/bin/sh\necho golden-demo-works\n');
  await chmod(join(root, 'usr', 'bin', 'kumo-golden-demo'), 0o755);
  await writeFile(join(root, 'usr', 'share', 'kumo-golden-demo', 'data'), 'demo data\n');
  const deb = join(dir, 'kumo-golden-demo_1.0_all.deb');
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', root, deb], { stdio: 'ignore' });
  return deb;
}

before(async () => {
  image = testImagePath();
  home = await mkdtemp(join(tmpdir(), 'kumo-e2e-golden-'));
  work = await mkdtemp(join(tmpdir(), 'kumo-e2e-golden-work-'));
});

after(async () => {
  if (home) {
    for (const n of made) await kumo(['delete', '--force', n], { home }).catch(() => {});
    for (const pid of qemuPidsUnder(home)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await rm(home, { recursive: true, force: true });
  }
  if (work) await rm(work, { recursive: true, force: true });
});

interface Identity {
  machineId: string;
  hostKey: string;
  hostname: string;
}
async function identity(name: string): Promise<Identity> {
  return {
    machineId: await sh(name, 'cat /etc/machine-id'),
    hostKey: await sh(name, 'sudo -n cat /etc/ssh/ssh_host_ed25519_key.pub | cut -d" " -f2'),
    hostname: await sh(name, 'hostname'),
  };
}

/**
 * What sealing left in a captured image, read by independent tools without booting it: the image
 * is converted to raw (qemu-img), its Linux root partition found (sfdisk), and read by debugfs
 * (e2fsprogs) at that offset.
 */
function sealedFacts(imagePath: string): { machineIdBytes: number; hostKeys: string[]; hookPresent: boolean; rootSsh: boolean; marker: string } {
  const raw = join(work, 'captured.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', imagePath, raw]);
  try {
    const pt = JSON.parse(execFileSync('sfdisk', ['--json', raw]).toString()).partitiontable as { partitions: { start: number; type: string }[] };
    const root = pt.partitions.find((p) => p.type === '83');
    assert.ok(root, 'the captured image has a Linux root partition');
    const dev = `${raw}?offset=${root.start * 512}`;
    const dbg = (cmd: string) => execFileSync('debugfs', ['-R', cmd, dev], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const stat = (path: string) => spawnSync('debugfs', ['-R', `stat ${path}`, dev], { encoding: 'utf8' });
    const size = /Size: (\d+)/.exec(stat('/etc/machine-id').stdout);
    assert.ok(size, `debugfs cannot stat /etc/machine-id in the captured image`);
    return {
      machineIdBytes: Number(size[1]),
      hostKeys: dbg('ls /etc/ssh').split(/\s+/).filter((w) => w.startsWith('ssh_host_')),
      hookPresent: !/not found/i.test(stat(SEAL_HOOK_PATH).stderr),
      rootSsh: !/not found/i.test(stat('/root/.ssh').stderr),
      marker: dbg('cat /etc/golden-marker'),
    };
  } finally {
    rmSync(raw, { force: true });
  }
}

test('golden images: customise, snapshot, capture + seal, launch two, clone, consolidate + prune', { timeout: 2_400_000 }, async (t) => {
  const deb = await buildDeb(work);
  const t0 = Date.now();
  const lap = (what: string) => t.diagnostic(`${what}: ${Math.round((Date.now() - t0) / 1000)} s`);

  // 1. the source: launch (boot 1), customise
  made.add('src');
  await ok(['launch', image, '--name', 'src', '--accel', 'tcg']);
  lap('source ready');
  await ok(['cp', deb, 'src:/tmp/kumo-golden-demo.deb']);
  await sh('src', 'sudo -n dpkg -i /tmp/kumo-golden-demo.deb >/dev/null && echo "made in src" | sudo -n tee /etc/golden-marker >/dev/null && echo "history" >> ~/.bash_history');
  assert.equal(await sh('src', 'kumo-golden-demo'), 'golden-demo-works');
  const srcId = await identity('src');
  assert.equal(srcId.hostname, 'src');

  // 2. live snapshot: change, restore, the change is gone
  await ok(['snapshot', 'create', 'src', 'before']);
  await sh('src', 'echo changed | sudo -n tee /etc/after-snapshot >/dev/null && sync');
  assert.equal(await sh('src', 'cat /etc/after-snapshot'), 'changed');
  await ok(['snapshot', 'restore', 'src', 'before']);
  assert.equal(await sh('src', 'test -e /etc/after-snapshot && echo present || echo gone'), 'gone');
  assert.equal(await sh('src', 'cat /etc/golden-marker'), 'made in src');
  const listed = JSON.parse(await ok(['snapshot', 'list', 'src', '--json'])) as { name: string; vmStateSize?: number }[];
  assert.deepEqual(listed.map((s) => s.name), ['before']);
  assert.ok((listed[0]!.vmStateSize ?? 0) > 0);
  await ok(['snapshot', 'delete', 'src', 'before']);
  lap('live snapshot done');

  // 3. capture: refused while running, then on the stopped source (boot 2: the sealing copy)
  const refused = await k(['capture', 'src', '--image', 'golden']);
  assert.equal(refused.code, 5, refused.stderr); // conflict
  assert.match(refused.stderr, /cannot capture instance 'src' while it is running/);
  assert.match(refused.stderr, /kumo stop src/);
  await ok(['stop', 'src']);
  const srcDisk = join(home, 'instances', 'src', 'disk.qcow2');
  const srcBefore = await sha(srcDisk);
  const cap = JSON.parse(await ok(['capture', 'src', '--image', 'golden', '--json'])) as { sealed: boolean; image: { id: string; path: string; metadata: Record<string, unknown> } };
  lap('captured');
  assert.equal(cap.sealed, true);
  assert.equal(await sha(srcDisk), srcBefore, "the source's disk was not touched by the capture");
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', cap.image.path]).toString()) as { format: string; 'backing-filename'?: string };
  assert.equal(info.format, 'qcow2');
  assert.equal(info['backing-filename'], undefined, 'standalone image');
  assert.equal((cap.image.metadata.capturedFrom as { instance: string }).instance, 'src');
  // the sealed result, read from the captured image itself
  const sealed = sealedFacts(cap.image.path);
  assert.equal(sealed.machineIdBytes, 0, 'machine-id is empty in the captured image');
  assert.deepEqual(sealed.hostKeys, [], 'no ssh host keys in the captured image');
  assert.equal(sealed.hookPresent, false, 'the one-shot seal hook removed itself');
  assert.equal(sealed.rootSsh, false, "root's ~/.ssh is gone");
  assert.equal(sealed.marker, 'made in src\n', 'what the user made is kept');
  assert.ok(cap.image.metadata.parentImage);
  assert.ok(cap.image.metadata.capturedAt);
  // a name that exists
  const again = await k(['capture', 'src', '--image', 'golden', '--no-seal']);
  assert.equal(again.code, 5, again.stderr); // conflict
  assert.match(again.stderr, /an image named 'golden' already exists/);

  // 4. an offline snapshot on the stopped source, seen by qemu-img
  await ok(['snapshot', 'create', 'src', 'cold']);
  assert.match(execFileSync('qemu-img', ['snapshot', '-l', srcDisk]).toString(), /\bcold\b/);
  await ok(['snapshot', 'delete', 'src', 'cold']);

  // 5. clone the stopped source: a new identity, same disk content
  made.add('src-copy');
  await ok(['clone', 'src', 'src-copy']);
  const a = JSON.parse(await readFile(join(home, 'instances', 'src', 'instance.json'), 'utf8')) as { instanceId: string; mac: string };
  const b = JSON.parse(await readFile(join(home, 'instances', 'src-copy', 'instance.json'), 'utf8')) as { instanceId: string; mac: string };
  assert.notEqual(a.instanceId, b.instanceId);
  assert.notEqual(a.mac, b.mac);
  assert.match(execFileSync('qemu-img', ['compare', srcDisk, join(home, 'instances', 'src-copy', 'disk.qcow2')]).toString(), /identical/);

  // 6. two instances from the golden image, launched together (boot 3)
  made.add('g1');
  made.add('g2');
  const [r1, r2] = await Promise.all([k(['launch', 'golden', '--name', 'g1', '--accel', 'tcg']), k(['launch', 'golden', '--name', 'g2', '--accel', 'tcg'])]);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  lap('g1 and g2 ready');
  const ids: Identity[] = [];
  for (const g of ['g1', 'g2']) {
    assert.equal(await sh(g, 'cat /etc/golden-marker'), 'made in src', `${g} has the file`);
    assert.equal(await sh(g, 'dpkg-query -W -f=\'${Status}\' kumo-golden-demo'), 'install ok installed', `${g} has the package`);
    assert.equal(await sh(g, 'kumo-golden-demo'), 'golden-demo-works');
    // sealed: no history, no source's cloud-init state
    assert.equal(await sh(g, 'test -s ~/.bash_history && echo dirty || echo clean'), 'clean', `${g}: shell history removed`);
    assert.equal(await sh(g, `sudo -n grep -rl ${a.instanceId} /var/lib/cloud 2>/dev/null | wc -l`), '0', `${g}: no trace of the source's instance-id`);
    ids.push(await identity(g));
  }
  const [i1, i2] = ids as [Identity, Identity];
  for (const [g, id] of [['g1', i1], ['g2', i2]] as const) {
    assert.match(id.hostKey, /^AAAA/, `${g} has an ed25519 host key`);
    // the key the guest presents is the one kumo made for it (ssh pins it with StrictHostKeyChecking=yes)
    assert.ok((await readFile(join(home, 'instances', g, 'known_hosts'), 'utf8')).includes(id.hostKey));
  }
  assert.equal(i1.hostname, 'g1');
  assert.equal(i2.hostname, 'g2');
  assert.match(i1.machineId, /^[0-9a-f]{32}$/);
  assert.notEqual(i1.machineId, i2.machineId, 'machine-ids differ');
  assert.notEqual(i1.machineId, srcId.machineId);
  assert.notEqual(i2.machineId, srcId.machineId);
  assert.notEqual(i1.hostKey, i2.hostKey, 'host keys differ');
  assert.notEqual(i1.hostKey, srcId.hostKey);

  // 7. consolidate g1, remove everything else that uses the golden image, remove it, boot g1 again (boot 4)
  const notStopped = await k(['consolidate', 'g1']);
  assert.equal(notStopped.code, 5, notStopped.stderr); // conflict
  assert.match(notStopped.stderr, /while it is running/);
  await ok(['delete', '--force', 'g2']);
  made.delete('g2');
  await ok(['consolidate', '--stop', 'g1']);
  lap('consolidated');
  const g1Disk = join(home, 'instances', 'g1', 'disk.qcow2');
  assert.equal((JSON.parse(execFileSync('qemu-img', ['info', '--output=json', g1Disk]).toString()) as { 'backing-filename'?: string })['backing-filename'], undefined);
  await ok(['image', 'rm', 'golden']);
  assert.equal(existsSync(cap.image.path), false, 'the golden image file is gone');
  // boot g1 again, and the clone of src for the first time, together
  const [s1, s2] = await Promise.all([k(['start', 'g1']), k(['start', 'src-copy'])]);
  assert.equal(s1.code, 0, s1.stderr);
  assert.equal(s2.code, 0, s2.stderr);
  lap('g1 booted again, src-copy booted');
  // the clone has src's disk content and a new identity: machine-id, host key, hostname
  assert.equal(await sh('src-copy', 'cat /etc/golden-marker'), 'made in src');
  const cloneId = await identity('src-copy');
  assert.equal(cloneId.hostname, 'src-copy');
  assert.match(cloneId.machineId, /^[0-9a-f]{32}$/);
  assert.notEqual(cloneId.machineId, srcId.machineId, 'the clone has its own machine-id');
  assert.notEqual(cloneId.hostKey, srcId.hostKey, 'the clone has its own host key');
  await ok(['delete', '--force', 'src-copy']);
  made.delete('src-copy');
  assert.equal(await sh('g1', 'cat /etc/golden-marker'), 'made in src');
  assert.equal(await sh('g1', 'kumo-golden-demo'), 'golden-demo-works');
  assert.equal((await identity('g1')).machineId, i1.machineId, 'g1 kept its identity');
  await ok(['delete', '--force', 'g1']);
  made.delete('g1');
  assert.deepEqual(qemuPidsUnder(home), []);
});
