/**
 * Dynamic host ports against real sockets and real QEMU started without a guest OS (a blank
 * disk): assignPorts keeps a free last port and re-picks a taken one (TCP and UDP), refuses a
 * taken fixed port; the QEMU driver gives each dynamic forward a port QEMU really holds, keeps
 * it across stop/start while free, picks another when it was taken; and when another program
 * grabs the picked port between the pick and QEMU's bind (a wrapper around QEMU does that on
 * its first run), the driver picks again instead of failing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/core/exec.js';
import { pathsFor } from '../../../src/config/paths.js';
import { QemuDriver, QEMU_BINARY } from '../../../src/driver/qemu/driver.js';
import { assignPorts, portFree, PortInUseError } from '../../../src/driver/net.js';
import type { InstanceRuntime, PortForward } from '../../../src/driver/driver.js';

let root = '';
const running: { drv: QemuDriver; rt: InstanceRuntime }[] = [];

async function runtime(name: string, ports: PortForward[]): Promise<InstanceRuntime> {
  const dir = join(root, 'instances', name);
  await mkdir(dir, { recursive: true });
  const disk = join(dir, 'disk.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
  return { name, dir, paths: pathsFor(root), cpus: 1, memoryMiB: 128, disk: { path: disk, format: 'qcow2' }, mac: '52:54:00:aa:bb:cd', sshPort: 0, ports, accel: 'tcg' };
}

function listen(port = 0): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}
const portOf = (s: Server) => (s.address() as { port: number }).port;
const close = (s: Server) => new Promise((r) => s.close(r));

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kumo-dynports-'));
});

after(async () => {
  for (const { drv, rt } of running) await drv.stop(rt, { force: true }).catch(() => {});
  await rm(root, { recursive: true, force: true });
});

test('assignPorts: a free last port is kept, a taken one re-picked, a taken fixed one refused (tcp and udp)', async () => {
  const held = await listen();
  const taken = portOf(held);
  try {
    const free = await listen();
    const freeNow = portOf(free);
    await close(free);
    const got = await assignPorts([
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: freeNow, guestPort: 81, dynamic: true },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: taken, guestPort: 82, dynamic: true },
      { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 53, dynamic: true },
    ]);
    assert.ok(got[0]!.hostPort > 0);
    assert.equal(got[1]!.hostPort, freeNow, 'the last port, still free, is kept');
    assert.notEqual(got[2]!.hostPort, taken, 'a taken last port is picked again');
    assert.ok(got[3]!.hostPort > 0);
    assert.equal(new Set(got.map((p) => p.hostPort)).size, 4, 'no port twice');
    assert.ok(got.every((p) => p.dynamic));
    // a UDP port in use is seen as taken by the UDP check (not by the TCP one)
    const u = createSocket('udp4');
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
    try {
      assert.equal(await portFree(u.address().port, '127.0.0.1', 'udp'), false);
    } finally {
      u.close();
    }
    // a dynamic forward whose last port is now a fixed forward's (listed after it) moves away
    const [dyn, fixed] = await assignPorts([
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: freeNow, guestPort: 80, dynamic: true },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: freeNow, guestPort: 81 },
    ]);
    assert.notEqual(dyn!.hostPort, freeNow);
    assert.equal(fixed!.hostPort, freeNow);
    await assert.rejects(assignPorts([{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: taken, guestPort: 80 }]), (e: Error) => e instanceof PortInUseError && e.message === `port 127.0.0.1:${taken} is already taken`);
  } finally {
    await close(held);
  }
});

test('QEMU: dynamic forwards get ports QEMU holds, kept across stop/start while free, re-picked when taken', async () => {
  const drv = new QemuDriver();
  const rt = await runtime('dyn1', [
    { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true },
    { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 53, dynamic: true },
  ]);
  running.push({ drv, rt });
  const r1 = await drv.start(rt);
  const [tcp, udp] = r1.ports!;
  assert.ok(tcp!.hostPort > 0 && udp!.hostPort > 0);
  assert.equal(await portFree(tcp!.hostPort), false, 'QEMU holds the dynamic TCP forward');
  assert.equal(await portFree(udp!.hostPort, '127.0.0.1', 'udp'), false, 'QEMU holds the dynamic UDP forward');
  await drv.stop(rt, { force: true });

  // the next start with the recorded ports: the same ones
  const rt2 = { ...rt, sshPort: r1.sshPort, ports: r1.ports! };
  const r2 = await drv.start(rt2);
  assert.deepEqual(r2.ports, r1.ports);
  await drv.stop(rt2, { force: true });

  // another program took the TCP one meanwhile: a new port, not an error
  const thief = await listen(tcp!.hostPort);
  try {
    const r3 = await drv.start(rt2);
    assert.notEqual(r3.ports![0]!.hostPort, tcp!.hostPort);
    assert.equal(await portFree(r3.ports![0]!.hostPort), false);
    assert.equal(r3.ports![1]!.hostPort, udp!.hostPort, 'the free one is kept');
    await drv.stop(rt2, { force: true });
  } finally {
    await close(thief);
  }
  // a fixed port taken is an error naming it
  const held = await listen();
  try {
    await assert.rejects(drv.start({ ...rt2, ports: [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: portOf(held), guestPort: 80 }] }), (e: Error & { code?: string }) => e.code === 'PORT_IN_USE');
  } finally {
    await close(held);
  }
});

test('QEMU: a dynamic port grabbed between the pick and the bind is picked again', async () => {
  // A wrapper around QEMU that, on its first run only, binds the host port of the forward to
  // guest port 80 before QEMU starts (another program winning the race), then runs QEMU.
  const marker = join(root, 'grabbed');
  const wrapper = join(root, 'qemu-grabbing');
  const src = [
    `#!${process.execPath}`,
    "const { spawnSync } = require('node:child_process');",
    "const { existsSync, writeFileSync } = require('node:fs');",
    "const net = require('node:net');",
    'const args = process.argv.slice(2);',
    `const go = () => { const r = spawnSync(${JSON.stringify(QEMU_BINARY)}, args, { stdio: 'inherit' }); process.exit(r.status ?? 1); };`,
    `const rule = args.join(' ').match(/hostfwd=tcp:127\\.0\\.0\\.1:(\\d+)-:80/);`,
    `if (!rule || existsSync(${JSON.stringify(marker)})) go();`,
    'else {',
    `  writeFileSync(${JSON.stringify(marker)}, rule[1]);`,
    "  const s = net.createServer(); s.listen(Number(rule[1]), '127.0.0.1', go);",
    '}',
  ].join('\n');
  await writeFile(wrapper, src + '\n');
  await chmod(wrapper, 0o755);
  const drv = new QemuDriver(wrapper);
  const rt = await runtime('dyn2', [{ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 0, guestPort: 80, dynamic: true }]);
  running.push({ drv, rt });
  const r = await drv.start(rt);
  assert.ok(existsSync(marker), 'the first QEMU run lost the port');
  const { readFile } = await import('node:fs/promises');
  const lost = Number(await readFile(marker, 'utf8'));
  assert.notEqual(r.ports![0]!.hostPort, lost, 'picked again');
  assert.equal(await portFree(r.ports![0]!.hostPort), false, 'QEMU holds the new one');
  await drv.stop(rt, { force: true });
});
