/**
 * The libvirt driver against a real libvirtd (started by test/helpers/libvirtd.ts). The guests
 * here have no OS (a blank base disk): what is checked is libvirt's side, read back with virsh
 * (an independent reader): the domain and its metadata, its state, the forwarded ports, the
 * volumes, and that kumo leaves nothing defined when it fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { pathsFor } from '../../../src/config/paths.js';
import type { InstanceRuntime } from '../../../src/driver/driver.js';
import { getDriver } from '../../../src/driver/index.js';
import { LibvirtDriver, Virsh, findDesync, repairDesync, libvirtDisks, parseKumoMetadata, registerLibvirt } from '../../../src/driver/libvirt/index.js';
import { writeIso } from '../../../src/seed/index.js';
import { libvirtdUnavailable, startLibvirtd, type TestLibvirtd } from '../../helpers/libvirtd.js';
import { kumo } from '../../helpers/cli.js';
import { listening } from '../../helpers/net.js';

const skip = libvirtdUnavailable();

function virsh(uri: string, ...args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('libvirt driver against a real libvirtd', { skip }, () => {
  let lv: TestLibvirtd;
  let home: string;
  let base: string;
  const driver = new LibvirtDriver();
  /** The test daemon's URI, as a regular expression. */
  const uriRe = () => lv.uri.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

  async function instance(name: string, driverOptions: Record<string, unknown> = {}): Promise<InstanceRuntime> {
    const paths = pathsFor(home);
    const dir = join(paths.instances, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const disk = join(dir, 'disk.qcow2');
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', base, disk]);
    const seed = join(dir, 'seed.iso');
    await writeIso([{ path: 'meta-data', data: Buffer.from(`instance-id: ${name}\n`) }, { path: 'user-data', data: Buffer.from('#cloud-config\n') }], seed, { volumeId: 'cidata' });
    const opts = { connect: lv.uri, ...driverOptions };
    await writeFile(join(dir, 'instance.json'), JSON.stringify({ name, driver: 'libvirt', driverOptions: opts }));
    return {
      name,
      dir,
      paths,
      cpus: 1,
      memoryMiB: 128,
      disk: { path: disk, format: 'qcow2' },
      seed: { path: seed, format: 'nocloud' },
      mac: '52:54:00:12:34:56',
      sshPort: 0,
      ports: [],
      accel: 'tcg',
      driverOptions: opts,
    };
  }

  before(async () => {
    lv = await startLibvirtd();
    home = await mkdtemp('/tmp/kumo-lv-it-');
    await mkdir(join(home, 'images'), { recursive: true, mode: 0o700 });
    base = join(home, 'images', 'base.qcow2');
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
  });

  after(async () => {
    // Whatever a failed test left: this home's domains go (the helper destroys the rest).
    for (const d of virsh(lv.uri, 'list', '--all', '--name').out.split('\n').filter(Boolean)) {
      const x = virsh(lv.uri, 'dumpxml', d).out;
      if (x.includes(home)) {
        virsh(lv.uri, 'destroy', d);
        virsh(lv.uri, 'undefine', d);
      }
    }
    await rm(home, { recursive: true, force: true });
    await lv?.release();
  });

  test('registered by name', async () => {
    registerLibvirt();
    assert.equal((await getDriver('libvirt')).name, 'libvirt');
  });

  test('start defines a kumo domain, forwards ssh, and stop/start/kill/cleanup follow reality', async () => {
    const rt = await instance('alpha');
    const t0 = Date.now();
    const r = await driver.start(rt);
    assert.equal(r.accel, 'tcg');
    assert.ok(r.sshPort > 0);
    assert.equal(virsh(lv.uri, 'domstate', 'alpha').out.trim(), 'running');
    const xml = virsh(lv.uri, 'dumpxml', 'alpha').out;
    assert.match(xml, /<domain type='qemu'/);
    const meta = parseKumoMetadata(xml)!;
    assert.deepEqual(meta, { instance: 'alpha', home, dir: rt.dir, client: hostname(), created: meta.created, sshPort: r.sshPort });
    // created: when this start defined the domain (an ISO time between the test's start and now).
    assert.match(meta.created ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.ok(Date.parse(meta.created!) >= t0 - 1000 && Date.parse(meta.created!) <= Date.now(), meta.created);
    assert.ok(await listening(r.sshPort), 'ssh is forwarded on 127.0.0.1');
    assert.ok((await stat(join(rt.dir, 'serial.log'))).isFile(), 'the serial console goes to serial.log');
    const st = await driver.status(rt);
    assert.equal(st.state, 'running');
    assert.ok(st.pid && st.pid > 0);
    await assert.rejects(driver.start(rt), (e: Error & { code?: string }) => e.code === 'INSTANCE_RUNNING');

    // Ports while running.
    const fwd = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80 };
    const { freePort } = await import('../../../src/driver/net.js');
    // A free port may be taken by someone else before the forward binds it: pick again then.
    for (let i = 0; ; i++) {
      fwd.hostPort = await freePort();
      try {
        await driver.addPort(rt, fwd);
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== 'PORT_IN_USE' || i >= 4) throw e;
      }
    }
    assert.ok(await listening(fwd.hostPort));
    await assert.rejects(driver.addPort(rt, fwd), (e: Error & { code?: string }) => e.code === 'PORT_IN_USE');
    await driver.removePort(rt, fwd);
    assert.equal(await listening(fwd.hostPort), false);

    // No OS answers ACPI: the shutdown is forced after the timeout.
    const warnings: string[] = [];
    await driver.stop(rt, { timeoutMs: 1500, onEvent: (e) => e.type === 'log' && warnings.push(e.message) });
    assert.equal(virsh(lv.uri, 'domstate', 'alpha').out.trim(), 'shut off');
    assert.match(warnings.join('\n'), /forcing it off/);
    assert.equal((await driver.status(rt)).state, 'stopped');
    await driver.stop(rt); // idempotent

    // QEMU killed behind libvirt's back: crashed, and start again works.
    await driver.start(rt);
    const pid = (await driver.status(rt)).pid!;
    process.kill(pid, 'SIGKILL');
    let s = await driver.status(rt);
    for (let i = 0; i < 50 && s.state === 'running'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      s = await driver.status(rt);
    }
    assert.equal(s.state, 'crashed', JSON.stringify(s));
    await driver.start(rt);
    assert.equal((await driver.status(rt)).state, 'running');
    await assert.rejects(driver.purge(rt), (e: Error & { code?: string }) => e.code === 'INSTANCE_RUNNING');
    await driver.stop(rt, { force: true });
    await driver.cleanup(rt); // after a stop: nothing to clean, the domain stays defined
    assert.equal(virsh(lv.uri, 'domstate', 'alpha').out.trim(), 'shut off');
    await driver.purge(rt);
    assert.notEqual(virsh(lv.uri, 'domstate', 'alpha').status, 0, 'the domain is undefined');
    assert.ok((await stat(base)).isFile(), 'the base is never removed');
    await driver.purge(rt); // idempotent
    await rm(rt.dir, { recursive: true }); // as the instance layer's delete does
  });

  test('de-sync: a domain removed behind kumo\'s back is reported and defined again; an orphan domain is found and removed', async () => {
    const rt = await instance('beta');
    await driver.start(rt);
    await driver.stop(rt, { force: true });
    assert.equal(virsh(lv.uri, 'undefine', 'beta').status, 0);
    const st = await driver.status(rt);
    assert.equal(st.state, 'stopped');
    assert.match(st.detail ?? '', /not defined in libvirt .*removed behind kumo's back/);
    let d = await findDesync(rt.paths);
    assert.deepEqual(d.missingDomains.map((m) => m.name), ['beta']);
    await driver.start(rt); // the repair: defined again
    assert.equal(virsh(lv.uri, 'domstate', 'beta').out.trim(), 'running');
    await driver.stop(rt, { force: true });

    // The instance dir goes (kumo killed mid-delete, or rm -r by hand): the domain is an orphan.
    await unlink(join(rt.dir, 'instance.json'));
    d = await findDesync(rt.paths, [lv.uri]);
    assert.deepEqual(d.orphanDomains.map((o) => o.domain), ['beta']);
    assert.deepEqual(d.missingDomains, []);
    const removed = await repairDesync(rt.paths, { uris: [lv.uri] });
    assert.deepEqual(removed.map((o) => o.domain), ['beta']);
    assert.notEqual(virsh(lv.uri, 'domstate', 'beta').status, 0);
  });

  test("a domain name taken by something not kumo's: clear error, and that domain is never touched", async () => {
    const foreign = `<domain type='qemu'><name>taken</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`;
    const f = join(home, 'foreign.xml');
    await writeFile(f, foreign);
    assert.equal(virsh(lv.uri, 'define', f).status, 0);
    const before = virsh(lv.uri, 'dumpxml', 'taken').out;
    const rt = await instance('taken');
    await assert.rejects(driver.start(rt), (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, 'LIBVIRT_DOMAIN_TAKEN');
      assert.match(e.message, /already has a domain 'taken' that is not this kumo instance's/);
      assert.match(e.hint ?? '', /another instance name/);
      return true;
    });
    const st = await driver.status(rt);
    assert.equal(st.state, 'stopped');
    assert.match(st.detail ?? '', /taken by a domain kumo did not make/);
    await driver.purge(rt);
    assert.equal(virsh(lv.uri, 'dumpxml', 'taken').out, before, 'the foreign domain is unchanged');
    // Another kumo home's instance of the same name is not ours either.
    const other = await instance('gamma');
    await driver.start(other);
    await driver.stop(other, { force: true });
    const impostor = { ...other, paths: pathsFor('/tmp/another-kumo-home'), dir: '/tmp/another-kumo-home/instances/gamma' };
    await assert.rejects(driver.start(impostor), /belongs to kumo instance 'gamma' of .*kumo-lv-it/);
    await driver.purge(other);
    virsh(lv.uri, 'undefine', 'taken');
  });

  test('a start that fails leaves nothing defined', async () => {
    const rt = await instance('delta');
    await rm(rt.disk.path);
    await assert.rejects(driver.start(rt), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'LIBVIRT_START_FAILED');
      assert.match(e.message, /disk\.qcow2/);
      return true;
    });
    assert.notEqual(virsh(lv.uri, 'domstate', 'delta').status, 0, 'no domain is left defined');
  });

  test('faults: daemon unreachable, unknown URI, permission denied on the socket', async () => {
    const rt = await instance('eps', { connect: 'qemu+tcp://127.0.0.1:1/system' });
    await assert.rejects(driver.start(rt), (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, 'LIBVIRT_UNREACHABLE');
      assert.match(e.message, /cannot reach libvirt at qemu\+tcp:\/\/127\.0\.0\.1:1\/system/);
      assert.ok(e.hint);
      return true;
    });
    const st = await driver.status(rt);
    assert.equal(st.state, 'unknown');
    assert.match(st.detail ?? '', /cannot reach libvirt/);
    await assert.rejects(new Virsh(lv.uri.replace(/^qemu\+unix:/, 'foo+unix:')).ping(), (e: Error & { code?: string }) => e.code === 'LIBVIRT_URI_UNKNOWN');
    await assert.rejects(new Virsh(lv.uri.replace('/system?', '/bogus?')).ping(), (e: Error & { code?: string }) => e.code === 'LIBVIRT_URI_UNKNOWN');
    // Another user on the root-only socket.
    const mod = new URL('../../../src/driver/libvirt/index.js', import.meta.url).pathname;
    const script = `import { Virsh } from '${mod}'; try { await new Virsh(${JSON.stringify(lv.uri)}).ping(); console.log('{}'); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }`;
    const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: '/' });
    const j = JSON.parse(r.stdout.trim() || '{}') as { code?: string; message?: string; hint?: string };
    assert.equal(j.code, 'LIBVIRT_PERMISSION_DENIED', r.stdout + r.stderr);
    assert.match(j.message ?? '', /permission denied/i);
    assert.match(j.hint ?? '', /libvirt' group|qemu:\/\/\/session/);
  });

  test('a transport URI (qemu+unix, the test daemon\'s private socket) with a storage pool: volumes backed by the uploaded base, removed on delete (never the base)', async () => {
    const poolDir = join(home, 'pool');
    await mkdir(poolDir, { recursive: true });
    assert.equal(virsh(lv.uri, 'pool-define-as', 'kumotest', 'dir', '--target', poolDir).status, 0);
    assert.equal(virsh(lv.uri, 'pool-start', 'kumotest').status, 0);
    const rt = await instance('remote1', { connect: lv.uri, pool: 'kumotest' });
    const r = await driver.start(rt);
    assert.equal(virsh(lv.uri, 'domstate', 'remote1').out.trim(), 'running');
    assert.ok(await listening(r.sshPort));
    const vols = virsh(lv.uri, 'vol-list', '--pool', 'kumotest').out;
    assert.match(vols, /kumo-remote1-disk\.qcow2/);
    assert.match(vols, /kumo-remote1-seed\.iso/);
    const baseVol = /(kumo-base-\S+)/.exec(vols)?.[1];
    assert.ok(baseVol, vols);
    // The instance disk's backing store is the uploaded base (read by qemu-img, not by kumo).
    const info = JSON.parse(spawnSync('qemu-img', ['info', '-U', '--output=json', join(poolDir, 'kumo-remote1-disk.qcow2')], { encoding: 'utf8' }).stdout) as Record<string, string>;
    assert.equal(info['backing-filename'], join(poolDir, baseVol));
    assert.equal(info['backing-filename-format'], 'qcow2');
    // The seed volume holds the seed's bytes.
    assert.deepEqual(await readFile(join(poolDir, 'kumo-remote1-seed.iso')), await readFile(rt.seed!.path));
    const disks = await libvirtDisks(rt.paths, [lv.uri]);
    assert.ok(disks.some((d) => d.disk === join(poolDir, 'kumo-remote1-disk.qcow2') && /remote1/.test(d.owner)), JSON.stringify(disks));
    await driver.stop(rt, { force: true });
    await driver.purge(rt);
    const after = virsh(lv.uri, 'vol-list', '--pool', 'kumotest').out;
    assert.doesNotMatch(after, /kumo-remote1-/);
    assert.match(after, new RegExp(baseVol!.replace(/\./g, '\\.')), 'the base volume stays');
    virsh(lv.uri, 'vol-delete', '--pool', 'kumotest', baseVol!);
    virsh(lv.uri, 'pool-destroy', 'kumotest');
    virsh(lv.uri, 'pool-undefine', 'kumotest');
  });
  test('CLI: create --driver libvirt --connect URI --pool, list/info show the driver, delete removes the domain and its volumes (never the base); --connect with --driver qemu is refused', async () => {
    const h = await mkdtemp('/tmp/kumo-lv-cli-');
    const poolDir = join(h, 'pool');
    await mkdir(poolDir);
    assert.equal(virsh(lv.uri, 'pool-define-as', 'kumocli', 'dir', '--target', poolDir).status, 0);
    assert.equal(virsh(lv.uri, 'pool-start', 'kumocli').status, 0);
    try {
      const common = ['--accel', 'tcg', '--memory', '128M', '--cpus', '1'];
      // The refusals first: nothing may be made.
      let r = await kumo(['--home', h, 'create', base, '--name', 'clix', '--driver', 'qemu', '--connect', lv.uri, ...common]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /connect: applies only to the libvirt driver \(the driver is qemu\)/);
      assert.match(r.stderr, /hint: add --driver libvirt/);
      assert.equal(existsSync(join(h, 'instances', 'clix')), false);
      r = await kumo(['--home', h, 'create', base, '--name', 'clix', '--driver', 'libvirt', '--connect', lv.uri, '--pool', 'nosuchpool', ...common]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /has no storage pool 'nosuchpool'/);
      assert.equal(existsSync(join(h, 'instances', 'clix')), false, 'a missing pool is found before anything is made');

      r = await kumo(['--home', h, '--json', 'create', base, '--name', 'clix', '--driver', 'libvirt', '--connect', lv.uri, '--pool', 'kumocli', ...common]);
      assert.equal(r.code, 0, r.stderr);
      const rec = JSON.parse(r.stdout) as { driver: string; driverOptions: Record<string, string> };
      assert.equal(rec.driver, 'libvirt');
      assert.deepEqual(rec.driverOptions, { connect: lv.uri, pool: 'kumocli' });
      assert.deepEqual(JSON.parse(await readFile(join(h, 'instances', 'clix', 'instance.json'), 'utf8')).driverOptions, { connect: lv.uri, pool: 'kumocli' });

      // A created instance has no domain yet (the first start defines it): plain stopped, no de-sync.
      r = await kumo(['--home', h, 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      let rows = JSON.parse(r.stdout) as { name: string; status: string; driver: string; connect?: string; desync?: string; ssh?: string }[];
      assert.deepEqual(rows.map((x) => [x.name, x.status, x.driver, x.connect, x.desync]), [['clix', 'stopped', 'libvirt', lv.uri, undefined]]);
      r = await kumo(['--home', h, 'list']);
      assert.match(r.stdout, new RegExp(`clix\\s+stopped\\s+libvirt ${uriRe()}`));

      // Started without an OS (a blank disk): the domain and its volumes exist, ssh is forwarded.
      r = await kumo(['--home', h, 'start', 'clix', '--no-wait']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(virsh(lv.uri, 'domstate', 'clix').out.trim(), 'running');
      let vols = virsh(lv.uri, 'vol-list', '--pool', 'kumocli').out;
      assert.match(vols, /kumo-clix-disk\.qcow2/);
      assert.match(vols, /kumo-clix-seed\.iso/);
      const baseVol = /(kumo-base-\S+)/.exec(vols)?.[1];
      assert.ok(baseVol, vols);
      r = await kumo(['--home', h, 'list', '--json']);
      rows = JSON.parse(r.stdout);
      assert.equal(rows[0]!.status, 'running');
      assert.match(rows[0]!.ssh ?? '', /^127\.0\.0\.1:\d+$/);
      assert.ok(await listening(Number(rows[0]!.ssh!.split(':')[1])), 'the ssh shown is the forward libvirt runs');
      r = await kumo(['--home', h, 'info', 'clix', '--json']);
      const info = JSON.parse(r.stdout) as { driver: { name: string; options: Record<string, string> } };
      assert.deepEqual(info.driver, { name: 'libvirt', options: { connect: lv.uri, pool: 'kumocli' } });
      r = await kumo(['--home', h, 'info', 'clix']);
      assert.match(r.stdout, new RegExp(`driver:\\s+libvirt \\(connect ${uriRe()}, pool kumocli\\)`));

      // delete: refused while running, then with --force the domain and the instance's volumes go.
      r = await kumo(['--home', h, 'delete', 'clix']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, /is running/);
      r = await kumo(['--home', h, 'delete', '--force', 'clix']);
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual(virsh(lv.uri, 'domstate', 'clix').status, 0, 'the domain is undefined');
      vols = virsh(lv.uri, 'vol-list', '--pool', 'kumocli').out;
      assert.doesNotMatch(vols, /kumo-clix-/);
      assert.match(vols, new RegExp(baseVol!.replace(/\./g, '\\.')), 'the base volume stays');
      assert.equal(existsSync(join(h, 'instances', 'clix')), false);
      virsh(lv.uri, 'vol-delete', '--pool', 'kumocli', baseVol!);
    } finally {
      if (virsh(lv.uri, 'dumpxml', 'clix').out.includes(h)) (virsh(lv.uri, 'destroy', 'clix'), virsh(lv.uri, 'undefine', 'clix'));
      virsh(lv.uri, 'pool-destroy', 'kumocli');
      virsh(lv.uri, 'pool-undefine', 'kumocli');
      await rm(h, { recursive: true, force: true });
    }
  });

  test('CLI de-sync: list marks an instance whose domain was undefined by hand and an orphan domain whose folder is gone; start and repair set them straight', async () => {
    const h = await mkdtemp('/tmp/kumo-lv-cli-');
    try {
      const common = ['--accel', 'tcg', '--memory', '128M', '--cpus', '1', '--driver', 'libvirt', '--connect', lv.uri];
      for (const n of ['clid', 'clio']) {
        const r = await kumo(['--home', h, 'create', base, '--name', n, ...common]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await kumo(['--home', h, 'start', n, '--no-wait'])).code, 0);
        assert.equal((await kumo(['--home', h, 'stop', '--force', n])).code, 0);
      }
      // The domain removed behind kumo's back.
      assert.equal(virsh(lv.uri, 'undefine', 'clid').status, 0);
      // The instance folder removed behind kumo's back: its domain is an orphan.
      await rm(join(h, 'instances', 'clio'), { recursive: true });
      let r = await kumo(['--home', h, 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const rows = JSON.parse(r.stdout) as { name: string; status: string; driver: string; connect?: string; desync?: string; detail?: string }[];
      const by = Object.fromEntries(rows.map((x) => [x.name, x]));
      assert.equal(by.clid?.status, 'stopped');
      assert.match(by.clid?.detail ?? '', new RegExp(`not defined in libvirt at ${uriRe()}`));
      assert.match(by.clid?.desync ?? '', /kumo start clid/);
      assert.equal(by.clio?.status, 'orphan');
      assert.equal(by.clio?.driver, 'libvirt');
      assert.equal(by.clio?.connect, lv.uri);
      assert.match(by.clio?.desync ?? '', /kumo repair clio/);
      r = await kumo(['--home', h, 'list']);
      assert.match(r.stdout, /clid\s+stopped \(de-sync\)/);
      assert.match(r.stdout, /clio\s+orphan\s+libvirt/);
      assert.match(r.stderr, new RegExp(`clio: libvirt domain 'clio' at ${uriRe()} is stopped but its instance folder .* is gone; remove it with: kumo repair clio`));

      // repair NAME removes only that orphan; the de-synced instance is reported with what fixes it.
      r = await kumo(['--home', h, 'repair', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const rep = JSON.parse(r.stdout) as { removed: { instance: string }[]; desynced: { name: string; hint: string }[] };
      assert.deepEqual(rep.removed.map((x) => x.instance), ['clio']);
      assert.deepEqual(rep.desynced.map((x) => x.name), ['clid']);
      assert.notEqual(virsh(lv.uri, 'domstate', 'clio').status, 0, 'the orphan domain is undefined');
      // start is the repair of a missing domain.
      assert.equal((await kumo(['--home', h, 'start', 'clid', '--no-wait'])).code, 0);
      assert.equal(virsh(lv.uri, 'domstate', 'clid').out.trim(), 'running');
      r = await kumo(['--home', h, 'list', '--json']);
      assert.deepEqual((JSON.parse(r.stdout) as { name: string; status: string; desync?: string }[]).map((x) => [x.name, x.status, x.desync]), [['clid', 'running', undefined]]);
      assert.equal((await kumo(['--home', h, 'delete', '--force', 'clid'])).code, 0);
      assert.notEqual(virsh(lv.uri, 'domstate', 'clid').status, 0);

      // With no instance left on that URI, the home still remembers it: a running orphan is found, and removed only with --force.
      assert.equal((await kumo(['--home', h, 'create', base, '--name', 'cliz', ...common])).code, 0);
      assert.equal((await kumo(['--home', h, 'start', 'cliz', '--no-wait'])).code, 0);
      await rm(join(h, 'instances', 'cliz'), { recursive: true });
      r = await kumo(['--home', h, 'list', '--json']);
      assert.deepEqual((JSON.parse(r.stdout) as { name: string; status: string }[]).map((x) => [x.name, x.status]), [['cliz', 'orphan']]);
      r = await kumo(['--home', h, 'repair', 'cliz']);
      assert.equal(r.code, 5, r.stderr);
      assert.match(r.stderr, new RegExp(`libvirt domain 'cliz' at ${uriRe()} \\(instance 'cliz'\\) is running`));
      assert.match(r.stderr, /hint: .*kumo repair --force cliz/);
      assert.equal(virsh(lv.uri, 'domstate', 'cliz').out.trim(), 'running', 'left alone without --force');
      r = await kumo(['--home', h, 'repair', '--force', 'cliz']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /cliz: removed libvirt domain 'cliz'/);
      assert.notEqual(virsh(lv.uri, 'domstate', 'cliz').status, 0);
      r = await kumo(['--home', h, 'repair']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /nothing out of step/);
    } finally {
      for (const d of ['clid', 'clio', 'cliz']) if (virsh(lv.uri, 'dumpxml', d).out.includes(h)) (virsh(lv.uri, 'destroy', d), virsh(lv.uri, 'undefine', d));
      await rm(h, { recursive: true, force: true });
    }
  });
});
