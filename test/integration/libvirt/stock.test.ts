/**
 * kumo on libvirt configured as Debian ships it (test/helpers/libvirtd.ts, profile `stock`: QEMU
 * runs as libvirt-qemu, dynamic ownership, the DAC security driver, virtlogd), through the CLI with
 * no --pool: the instance's disks go into kumo's own pool (its QEMU cannot enter kumo's 0700 home),
 * QEMU really runs as libvirt-qemu on them, kumo's private key stays unreadable to that account
 * and out of every volume, the base is uploaded once, delete leaves only the shared base, an
 * instance whose disks are files gets an error naming the account and what to do, and a daemon
 * whose virtlogd is down says so (not "cannot reach libvirt"). The guests have no OS (a blank
 * base): what is checked is what libvirt and the host see. A real boot on this daemon is in
 * test/e2e/libvirt-stock.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { libvirtdUnavailable, startLibvirtd, stockVirtlogd, type TestLibvirtd } from '../../helpers/libvirtd.js';
import { kumo } from '../../helpers/cli.js';

const skip = libvirtdUnavailable();

function virsh(uri: string, ...args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** The error code of a failed `kumo --json` command. */
function errorCode(r: { stdout: string; stderr: string }): string | undefined {
  return /"code"\s*:\s*"([A-Z_]+)"/.exec(r.stdout + r.stderr)?.[1];
}

/** The uid a process runs as (from /proc). */
async function uidOf(pid: number): Promise<number> {
  const m = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

/** The QEMU process of a domain (found by its -name guest=NAME argument, as libvirt starts it). */
function qemuPid(domain: string): number | undefined {
  const r = spawnSync('pgrep', ['-f', `qemu-system-x86_64 -name guest=${domain},`], { encoding: 'utf8' });
  const pids = r.stdout.split('\n').filter(Boolean).map(Number);
  return pids[0];
}

describe('libvirt as Debian ships it (QEMU as libvirt-qemu, DAC, virtlogd)', { skip }, () => {
  let lv: TestLibvirtd;
  let home: string;
  let base: string;
  const uid = Number(spawnSync('id', ['-u', 'libvirt-qemu'], { encoding: 'utf8' }).stdout.trim());

  before(async () => {
    lv = await startLibvirtd('stock');
    home = await mkdtemp('/tmp/kumo-lv-stock-');
    base = join(home, 'base.qcow2');
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  });

  after(async () => {
    for (const n of ['a', 'b', 'c']) await kumo(['delete', '--force', n], { home }).catch(() => undefined);
    await lv?.release();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('no --pool: the disks go into kumo\u2019s pool, QEMU runs as libvirt-qemu on them, the base is uploaded once', async () => {
    const c = await kumo(['create', base, '--name', 'a', '--driver', 'libvirt', '--connect', lv.uri, '--memory', '128M', '--cpus', '1'], { home });
    assert.equal(c.code, 0, c.stderr);
    const rec = JSON.parse(await readFile(join(home, 'instances', 'a', 'instance.json'), 'utf8')) as { driverOptions?: { pool?: string } };
    assert.equal(rec.driverOptions?.pool, 'kumo', 'the daemon runs QEMU as another account: kumo picked its pool and pinned it in the record');
    const s = await kumo(['start', 'a', '--no-wait'], { home });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stderr + s.stdout, /uploading the base image into pool 'kumo'/);
    // kumo made its pool (a dir pool at libvirt's image folder, autostarted)
    const info = virsh(lv.uri, 'pool-info', 'kumo');
    assert.match(info.out, /State:\s+running/);
    assert.match(info.out, /Autostart:\s+yes/);
    assert.match(virsh(lv.uri, 'pool-dumpxml', 'kumo').out, /<path>\/var\/lib\/libvirt\/images\/kumo<\/path>/);
    // the domain's disks are the pool's volumes (its backing store the base volume); the only file of
    // kumo's home in it is the serial console, which libvirtd (root) opens and passes to QEMU
    const xml = virsh(lv.uri, 'dumpxml', 'a').out;
    assert.match(xml, /<source pool='kumo' volume='kumo-a-disk\.qcow2'/);
    assert.match(xml, /<source pool='kumo' volume='kumo-a-seed\.iso'/);
    assert.match(xml, /<backingStore type='file'[^>]*>\s*<format type='qcow2'\/>\s*<source file='\/var\/lib\/libvirt\/images\/kumo\/kumo-base-/);
    const inHome = [...xml.matchAll(/<source (?:file|path)='([^']+)'/g)].map((m) => m[1]!).filter((f) => f.startsWith(home));
    assert.deepEqual([...new Set(inHome)], [join(home, 'instances', 'a', 'serial.log')]);
    const pid = qemuPid('a');
    assert.ok(pid, 'QEMU runs for domain a');
    assert.equal(await uidOf(pid), uid, 'QEMU runs as libvirt-qemu');
    assert.match(virsh(lv.uri, 'domstate', 'a').out, /running/);

    // a second instance of the same image reuses the uploaded base
    assert.equal((await kumo(['create', base, '--name', 'b', '--driver', 'libvirt', '--connect', lv.uri, '--memory', '128M', '--cpus', '1'], { home })).code, 0);
    const s2 = await kumo(['start', 'b', '--no-wait'], { home });
    assert.equal(s2.code, 0, s2.stderr);
    assert.doesNotMatch(s2.stderr + s2.stdout, /uploading the base image/, 'the base volume is there already');
    const vols = virsh(lv.uri, 'vol-list', 'kumo').out;
    assert.equal(vols.split('\n').filter((l) => /^\s*kumo-base-/.test(l)).length, 1, vols);
  });

  test('kumo\u2019s private key: unreadable to libvirt-qemu, and in no volume of the pool', async () => {
    const keys = join(home, 'keys');
    const priv = join(keys, (await readdir(keys)).find((f) => !f.endsWith('.pub'))!);
    const r = spawnSync('runuser', ['-u', 'libvirt-qemu', '--', 'cat', priv], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'libvirt-qemu reads kumo\u2019s private key');
    assert.match(r.stderr, /Permission denied/);
    // Every line of the key's body but the first (the same in every OpenSSH key) must be in no volume.
    // The check can fail: the guest's own host key (which the seed must carry) is found in the seed.
    const lines = async (f: string) => (await readFile(f, 'utf8')).split('\n').filter((l) => l && !l.startsWith('-----')).slice(1);
    const probes = await lines(priv);
    assert.ok(probes.length >= 3 && probes.every((l) => l.length >= 40), 'an OpenSSH private key of several lines');
    const hostKeyLine = (await lines(join(home, 'instances', 'a', 'ssh_host_ed25519_key')))[0]!;
    let hostKeyFound = false;
    for (const line of virsh(lv.uri, 'vol-list', 'kumo').out.split('\n').filter((l) => l.trim())) {
      const name = line.trim().split(/\s+/)[0]!;
      const out = join(home, `vol-${name}`);
      assert.equal(virsh(lv.uri, 'vol-download', '--pool', 'kumo', name, out).status, 0, name);
      const data = await readFile(out, 'latin1');
      for (const p of probes) assert.ok(!data.includes(p), `volume ${name} holds kumo's private key`);
      if (name === 'kumo-a-seed.iso') hostKeyFound = data.includes(hostKeyLine);
      await rm(out, { force: true });
    }
    assert.ok(hostKeyFound, "the reader finds a key where there is one: the guest's host key in its seed");
  });

  test('delete removes the instance\u2019s volumes and keeps the shared base', async () => {
    assert.equal((await kumo(['delete', '--force', 'a'], { home })).code, 0);
    const vols = virsh(lv.uri, 'vol-list', 'kumo').out;
    assert.doesNotMatch(vols, /kumo-a-/);
    assert.match(vols, /kumo-b-disk\.qcow2/);
    assert.match(vols, /kumo-base-/);
    assert.equal(virsh(lv.uri, 'dominfo', 'a').status, 1, 'domain a is gone');
  });

  test('virtlogd down: the error says so (not "cannot reach libvirt"), and the start works once it is back', async () => {
    assert.equal((await kumo(['stop', '--force', 'b'], { home })).code, 0);
    await stockVirtlogd('stop');
    try {
      const r = await kumo(['start', 'b', '--no-wait', '--json'], { home });
      assert.notEqual(r.code, 0);
      assert.equal(errorCode(r), 'LIBVIRT_VIRTLOGD_DOWN', r.stdout + r.stderr);
      assert.match(r.stdout + r.stderr, /virtlogd/);
    } finally {
      await stockVirtlogd('start');
    }
    const ok = await kumo(['start', 'b', '--no-wait'], { home });
    assert.equal(ok.code, 0, ok.stderr);
  });

  test('an instance whose disks are files in kumo\u2019s home: an error naming the account and the way out, nothing left defined', async () => {
    assert.equal((await kumo(['create', base, '--name', 'c', '--driver', 'libvirt', '--connect', lv.uri, '--memory', '128M', '--cpus', '1'], { home })).code, 0);
    // as an instance made before kumo picked a pool for such a daemon: no pool in its record
    const f = join(home, 'instances', 'c', 'instance.json');
    const rec = JSON.parse(await readFile(f, 'utf8')) as { driverOptions: Record<string, unknown> };
    delete rec.driverOptions.pool;
    await writeFile(f, JSON.stringify(rec));
    const r = await kumo(['start', 'c', '--no-wait', '--json'], { home });
    assert.notEqual(r.code, 0);
    assert.equal(errorCode(r), 'LIBVIRT_DISK_ACCESS', r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`uid ${uid}`));
    assert.match(r.stdout + r.stderr, /pool/);
    assert.equal(virsh(lv.uri, 'dominfo', 'c').status, 1, 'the failed first start left no domain');
  });
});
