/**
 * One instance on libvirt, booted from the built test image under TCG (type='qemu' domain) on the
 * test libvirtd configured as Debian ships it (profile `stock`: QEMU as libvirt-qemu, dynamic
 * ownership, DAC, virtlogd; no --pool given, so kumo puts the disks in its own pool), carried through the instance layer as the CLI does: create, start and wait until
 * ssh and cloud-init are ready, exec, user-data applied, a port added while running, the serial
 * console, list beside a QEMU-driver instance, the image-in-use listing, a graceful ACPI stop
 * (no forcing), start again with the disk change kept, kill -9 of QEMU (crashed), delete (no
 * domain, no files, no process). Boots: 2.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathsFor, ensureHome } from '../../src/config/paths.js';
import type { KumoPaths } from '../../src/config/paths.js';
import { registerLibvirt, libvirtDisks, parseKumoMetadata } from '../../src/driver/libvirt/index.js';
import { freePort, portFree } from '../../src/driver/net.js';
import { sshBanner } from '../../src/guest/ready.js';
import { Instance, createInstance, deleteInstance, listInstances, startInstance, stopInstance, suspendInstance, addPort, removePort, readRecord } from '../../src/instance/index.js';
import { libvirtdUnavailable, startLibvirtd, type TestLibvirtd } from '../helpers/libvirtd.js';
import { testImagePath } from '../helpers/test-image.js';

let image: string | undefined;
try {
  image = testImagePath();
} catch {
  image = undefined;
}
const skip = libvirtdUnavailable() ?? (image ? undefined : 'the test image is not built (node dist/test/fixtures/test-image.js)');
const NAME = 'lv-e2e';

function virsh(uri: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('an instance on libvirt, end to end', { skip }, () => {
  let lv: TestLibvirtd;
  let home = '';
  let paths: KumoPaths;
  const vm = () => new Instance(paths, NAME);

  before(async () => {
    lv = await startLibvirtd('stock');
    registerLibvirt();
    home = await mkdtemp(join(tmpdir(), 'kumo-e2e-lv-'));
    paths = await ensureHome({ home });
  });

  after(async () => {
    if (home) {
      await deleteInstance(paths, NAME, { force: true }).catch(() => {});
      await deleteInstance(paths, 'on-qemu', { force: true }).catch(() => {});
      if (virsh(lv.uri, 'dumpxml', NAME).out.includes(home)) {
        virsh(lv.uri, 'destroy', NAME);
        virsh(lv.uri, 'undefine', NAME);
      }
      await rm(home, { recursive: true, force: true });
    }
    await lv?.release();
  });

  test('create + start: a TCG domain boots, ssh and cloud-init are ready, user-data applied', async () => {
    const rec = await createInstance(paths, {
      name: NAME,
      image: image!,
      driver: 'libvirt',
      memory: '1G',
      cpus: 2,
      timeout: 900,
      userDataText: ['#cloud-config', 'write_files:', '  - path: /etc/kumo-lv', '    content: from libvirt', ''].join('\n'),
    });
    assert.equal(rec.driver, 'libvirt');
    const events: string[] = [];
    const r = await startInstance(paths, NAME, { onEvent: (e) => e.type === 'step' && e.state === 'done' && events.push(e.label) });
    assert.equal(r.accel, 'tcg');
    for (const s of ['booting', 'network', 'ssh', 'cloud-init']) assert.ok(events.includes(s), `stage ${s}: ${events.join(', ')}`);
    const xml = virsh(lv.uri, 'dumpxml', NAME).out;
    assert.match(xml, /<domain type='qemu'/);
    assert.equal(parseKumoMetadata(xml)?.dir, join(paths.instances, NAME));
    const out = await vm().exec('cat /etc/kumo-lv; echo; hostname', { check: true });
    assert.equal(out.stdout, 'from libvirt\n' + `${NAME}\n`);
    // The host key kumo made: its public half readable by all as OpenSSH makes it, its private half 0600.
    const modes = await vm().exec('stat -c %a /etc/ssh/ssh_host_ed25519_key.pub; sudo stat -c %a /etc/ssh/ssh_host_ed25519_key; cat /etc/ssh/ssh_host_ed25519_key.pub', { check: true });
    const [pubMode, privMode, pub] = modes.stdout.split('\n');
    assert.equal(pubMode, '644');
    assert.equal(privMode, '600');
    assert.equal(pub!.split(' ').slice(0, 2).join(' '), (await readFile(join(paths.instances, NAME, 'ssh_host_ed25519_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' '));
  });

  test('ports while running, the serial console, list beside a QEMU-driver instance, disks in use', async () => {
    const p = await freePort();
    await addPort(paths, NAME, `${p}:22`);
    assert.ok(await sshBanner('127.0.0.1', p, 5000), 'the added forward reaches the guest sshd');
    await removePort(paths, NAME, String(p));
    // Removed for real: nothing holds the host port any more (we can bind it ourselves), and the
    // record lists no forward on it; not inferred from a probe that times out.
    assert.equal(await portFree(p, '127.0.0.1'), true, `port ${p} is still held after the forward was removed`);
    assert.equal((await readRecord(paths, NAME)).ports.some((f) => f.hostPort === p), false);

    const serial = await readFile(join(paths.instances, NAME, 'serial.log'), 'latin1');
    assert.match(serial, /Linux version|login:|cloud-init/);

    await createInstance(paths, { name: 'on-qemu', image: image!, memory: '256M' });
    const list = await listInstances(paths);
    const byName = Object.fromEntries(list.map((s) => [s.name, s]));
    assert.equal(byName[NAME]?.state, 'running');
    assert.equal(byName[NAME]?.record?.driver, 'libvirt');
    assert.equal(byName['on-qemu']?.state, 'stopped');
    assert.equal(byName['on-qemu']?.record?.driver, 'qemu');
    await deleteInstance(paths, 'on-qemu');

    // the domain's disk is a volume of kumo's pool (this daemon's QEMU cannot read kumo's home), and
    // QEMU runs as libvirt-qemu on it
    assert.equal((await readRecord(paths, NAME)).driverOptions?.pool, 'kumo');
    const disks = await libvirtDisks(paths);
    assert.ok(disks.some((d) => d.disk === `/var/lib/libvirt/images/kumo/kumo-${NAME}-disk.qcow2` && d.owner.includes(NAME)), JSON.stringify(disks));
    const pid = (await vm().status()).pid;
    assert.ok(pid, 'the QEMU pid is known');
    assert.match(await readFile(`/proc/${pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${spawnSync('id', ['-u', 'libvirt-qemu'], { encoding: 'utf8' }).stdout.trim()}\\s`, 'm'), 'QEMU runs as libvirt-qemu');
  });

  test('stop is a graceful ACPI power-down; start again keeps the disk change', async () => {
    await vm().exec('echo kept | sudo tee /var/tmp/kept >/dev/null && sync', { check: true });
    const warnings: string[] = [];
    await stopInstance(paths, NAME, { timeoutSec: 240, onEvent: (e) => e.type === 'log' && e.level === 'warn' && warnings.push(e.message) });
    assert.deepEqual(warnings, [], 'not forced');
    assert.equal(virsh(lv.uri, 'domstate', '--reason', NAME).out.trim(), 'shut off (shutdown)');
    assert.equal((await vm().status()).state, 'stopped');
    await startInstance(paths, NAME, {});
    const r = await vm().exec('cat /var/tmp/kept', { check: true });
    assert.equal(r.stdout, 'kept\n');
  });

  test('suspend through a managed save; start resumes it with a running process kept', async () => {
    const r = await vm().exec('nohup sleep 100000 >/dev/null 2>&1 & echo $!', { check: true });
    const pid = r.stdout.trim();
    await suspendInstance(paths, NAME, {});
    assert.equal(virsh(lv.uri, 'domstate', '--reason', NAME).out.trim(), 'shut off (saved)');
    assert.match(virsh(lv.uri, 'dominfo', NAME).out, /Managed save:\s+yes/);
    assert.equal((await vm().status()).state, 'suspended');
    const up = await startInstance(paths, NAME, {});
    assert.equal(up.restored?.kind, 'suspend');
    assert.equal((await vm().exec(`kill -0 ${pid} && echo alive`)).stdout.trim(), 'alive', 'the process survived');
    assert.match(virsh(lv.uri, 'dominfo', NAME).out, /Managed save:\s+no/);
  });

  test('kill -9 of QEMU reads as crashed; delete leaves no domain, no files, no process', async () => {
    const pid = (await vm().status()).pid;
    assert.ok(pid, 'the QEMU pid is known');
    process.kill(pid!, 'SIGKILL');
    let st = await vm().status();
    for (let i = 0; i < 50 && st.state === 'running'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      st = await vm().status();
    }
    assert.equal(st.state, 'crashed');
    const rec = await readRecord(paths, NAME);
    assert.equal(rec.driver, 'libvirt');
    await deleteInstance(paths, NAME);
    assert.notEqual(virsh(lv.uri, 'domstate', NAME).status, 0, 'the domain is undefined');
    assert.equal(existsSync(join(paths.instances, NAME)), false);
    const ps = spawnSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(ps, new RegExp(`guest=${NAME}[ ,]`));
    assert.ok(existsSync(image!), 'the base image stays');
  });
});

void pathsFor;
