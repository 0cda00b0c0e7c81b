/**
 * Dynamic ports on the libvirt driver (user networking: hostfwd_add through the domain's
 * monitor) against a real libvirtd (test/helpers/libvirtd.ts), with a guest that has no OS: each
 * dynamic forward gets a port QEMU really holds, the next start keeps it while it is free and
 * picks another once a program took it, and a taken fixed port is PORT_IN_USE.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { pathsFor } from '../../../src/config/paths.js';
import type { InstanceRuntime, PortForward } from '../../../src/driver/driver.js';
import { LibvirtDriver } from '../../../src/driver/libvirt/index.js';
import { portFree } from '../../../src/driver/net.js';
import { libvirtdUnavailable, startLibvirtd, type TestLibvirtd } from '../../helpers/libvirtd.js';
import { listening } from '../../helpers/net.js';

const skip = libvirtdUnavailable();

describe('libvirt: dynamic ports', { skip }, () => {
  let lv: TestLibvirtd;
  let home: string;
  const driver = new LibvirtDriver();
  let rt: InstanceRuntime | undefined;

  before(async () => {
    lv = await startLibvirtd();
    home = await mkdtemp('/tmp/kumo-lv-dyn-');
  });

  after(async () => {
    if (rt) {
      await driver.stop(rt, { force: true }).catch(() => {});
      await driver.purge(rt).catch(() => {});
    }
    await rm(home, { recursive: true, force: true });
    await lv?.release();
  });

  test('each dynamic forward gets a held port; kept across stop/start while free, re-picked when taken; a taken fixed port is refused', async () => {
    const paths = pathsFor(home);
    const name = 'dyn';
    const dir = join(paths.instances, name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const disk = join(dir, 'disk.qcow2');
    spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
    const driverOptions = { connect: lv.uri };
    await writeFile(join(dir, 'instance.json'), JSON.stringify({ name, driver: 'libvirt', driverOptions }));
    const ports: PortForward[] = [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true }];
    rt = { name, dir, paths, cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:12:34:57', sshPort: 0, ports, accel: 'tcg', driverOptions };

    const r1 = await driver.start(rt);
    const p1 = r1.ports![0]!;
    assert.equal(p1.dynamic, true);
    assert.ok(p1.hostPort > 0);
    assert.ok(await listening(p1.hostPort), 'QEMU forwards the dynamic port');
    await driver.stop(rt, { force: true });

    rt = { ...rt, sshPort: r1.sshPort, ports: r1.ports! };
    const r2 = await driver.start(rt);
    assert.equal(r2.ports![0]!.hostPort, p1.hostPort, 'kept while free');
    await driver.stop(rt, { force: true });

    const thief: Server = createServer();
    await new Promise<void>((res) => thief.listen(p1.hostPort, '127.0.0.1', res));
    try {
      const r3 = await driver.start(rt);
      assert.notEqual(r3.ports![0]!.hostPort, p1.hostPort, 'picked again');
      assert.equal(await portFree(r3.ports![0]!.hostPort), false);
      await driver.stop(rt, { force: true });
      await assert.rejects(driver.start({ ...rt, ports: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: p1.hostPort, guestPort: 80 }] }), (e: Error & { code?: string }) => e.code === 'PORT_IN_USE');
    } finally {
      await new Promise((res) => thief.close(res));
    }
  });
});
