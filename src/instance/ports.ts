/**
 * Port forwards of an instance: add, remove, list. Applied at once while the instance runs
 * (through the driver's ports capability) and kept in its record for the next start.
 */
import type { KumoPaths } from '../config/paths.js';
import { parsePortForwardInput } from '../config/spec.js';
import { ConflictError, InvalidInputError, NotFoundError, ValidationError } from '../core/errors.js';
import { getDriver, requireCapability, type Driver, type InstanceRuntime, type PortForward } from '../driver/index.js';
import { freePort, portFree, PortInUseError, PORT_PICK_ATTEMPTS } from '../driver/net.js';
import { lockInstance, readRecord, runtimeFor, writeRecord, type OpOptions } from './store.js';

export interface PortList {
  ssh: PortForward;
  ports: PortForward[];
  running: boolean;
}

function parsePort(s: unknown): PortForward {
  const p = parsePortForwardInput(s);
  if (typeof p === 'string') throw new ValidationError('invalid port forward', [{ path: 'port', message: p, hint: 'HOST:GUEST, e.g. 8080:80, or 0:80 to get a free host port' }]);
  return p;
}

async function isRunning(driver: Driver, rt: InstanceRuntime): Promise<boolean> {
  const st = await driver.status(rt);
  return st.state === 'running' || st.state === 'paused';
}

/**
 * Add a forward; applied at once when the instance runs (QMP hostfwd_add), and kept in
 * instance.json. A dynamic one (`0:80`) gets a free host port at once when the instance runs
 * (picked again if another program takes it before QEMU binds it), else at its next start.
 */
export async function addPort(paths: KumoPaths, name: string, spec: string | PortForward, opts: OpOptions = {}): Promise<PortForward> {
  // strings and objects alike go through the one port parser (an object is never trusted as is)
  let fwd = parsePort(spec);
  await using _lock = await lockInstance(paths, name, 'port add', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  if (!fwd.dynamic && (rec.ports.some((p) => p.hostPort === fwd.hostPort && p.proto === fwd.proto && p.hostAddr === fwd.hostAddr) || (fwd.proto === 'tcp' && fwd.hostPort === rec.ssh.port))) {
    throw new ConflictError('PORT_EXISTS', `instance '${name}' already forwards ${fwd.hostAddr}:${fwd.hostPort}/${fwd.proto}`, { hint: `remove it first: kumo port rm ${name} ${fwd.hostPort}` });
  }
  if (fwd.dynamic && rec.ports.some((p) => p.dynamic && p.guestPort === fwd.guestPort && p.proto === fwd.proto && p.hostAddr === fwd.hostAddr)) {
    throw new ConflictError('PORT_EXISTS', `instance '${name}' already has a dynamic forward to guest port ${fwd.guestPort}/${fwd.proto}`, { hint: `see its host port: kumo port list ${name}` });
  }
  const driver = await getDriver(rec.driver);
  const rt = runtimeFor(paths, rec);
  if (await isRunning(driver, rt)) {
    const ports = requireCapability(driver, 'ports', 'change port forwards while running');
    if (!fwd.dynamic) await ports.addPort(rt, fwd);
    else {
      const avoid = new Set<number>([rec.ssh.port, ...rec.ports.map((p) => p.hostPort)]);
      for (let attempt = 0; ; attempt++) {
        fwd = { ...fwd, hostPort: await freePort(fwd.hostAddr, avoid, fwd.proto) };
        try {
          await ports.addPort(rt, fwd);
          break;
        } catch (e) {
          // taken between the pick and QEMU's bind: pick again
          if (!(e instanceof PortInUseError) || attempt >= PORT_PICK_ATTEMPTS) throw e;
          avoid.add(fwd.hostPort);
        }
      }
    }
  } else if (!fwd.dynamic && !(await portFree(fwd.hostPort, fwd.hostAddr, fwd.proto))) throw new PortInUseError(fwd.hostAddr, fwd.hostPort, `forward to guest port ${fwd.guestPort}`);
  await writeRecord(paths, { ...rec, ports: [...rec.ports, fwd] });
  return fwd;
}

/**
 * Remove a forward by host port ("8080", "8080/udp", "127.0.0.1:8080") or full HOST:GUEST; a
 * dynamic one also by "0:GUEST" (the form it was added with).
 */
export async function removePort(paths: KumoPaths, name: string, spec: string, opts: OpOptions = {}): Promise<PortForward> {
  await using _lock = await lockInstance(paths, name, 'port rm', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+)(?::(\d+))?(?:\/(tcp|udp))?$/.exec(spec.trim());
  if (!m) throw new InvalidInputError('INVALID_PORT', `'${spec}' is not a host port`, { hint: 'give the host port, e.g. 8080 or 8080/udp (0:GUEST for a dynamic forward)' });
  const hostPort = Number(m[2]);
  const guestPort = m[3] !== undefined ? Number(m[3]) : undefined;
  const proto = (m[4] as 'tcp' | 'udp' | undefined) ?? 'tcp';
  const fwd = rec.ports.find(
    (p) =>
      p.proto === proto &&
      (!m[1] || p.hostAddr === m[1]) &&
      (guestPort === undefined || p.guestPort === guestPort) &&
      (p.hostPort === hostPort || (hostPort === 0 && p.dynamic === true && guestPort !== undefined)),
  );
  if (!fwd) throw new NotFoundError('PORT_NOT_FOUND', `instance '${name}' has no forward from host port ${hostPort}/${proto}`, { hint: `see: kumo port list ${name}` });
  const driver = await getDriver(rec.driver);
  const rt = runtimeFor(paths, rec);
  if (await isRunning(driver, rt)) await requireCapability(driver, 'ports', 'change port forwards while running').removePort(rt, fwd);
  await writeRecord(paths, { ...rec, ports: rec.ports.filter((p) => p !== fwd) });
  return fwd;
}

export async function listPorts(paths: KumoPaths, name: string): Promise<PortList> {
  const rec = await readRecord(paths, name);
  const driver = await getDriver(rec.driver);
  return { ssh: { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: rec.ssh.port, guestPort: 22 }, ports: rec.ports, running: await isRunning(driver, runtimeFor(paths, rec)) };
}

/**
 * The host port forwarded to guest port `guestPort`/`proto` (22: the ssh port) of a running
 * instance: the fixed one, or the one picked at start for a dynamic forward (kept while it runs).
 */
export async function mappedPort(paths: KumoPaths, name: string, guestPort: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (!Number.isInteger(guestPort) || guestPort < 1 || guestPort > 65535) {
    throw new InvalidInputError('INVALID_PORT', `guest port ${guestPort} is out of range (1-65535)`, { hint: 'give the guest port of a forward, e.g. mappedPort(80)' });
  }
  const l = await listPorts(paths, name);
  const f = guestPort === 22 && proto === 'tcp' ? l.ssh : l.ports.find((p) => p.guestPort === guestPort && p.proto === proto);
  if (!f) {
    const have = l.ports.map((p) => `${p.guestPort}/${p.proto}`).join(', ');
    throw new NotFoundError('PORT_NOT_FOUND', `instance '${name}' forwards no host port to guest port ${guestPort}/${proto}`, {
      hint: `${have ? `it forwards guest ports ${have}; ` : ''}add one: kumo port add ${name} 0:${guestPort}${proto === 'udp' ? '/udp' : ''} (or ports: [{ guest: ${guestPort} }] at launch)`,
    });
  }
  if (!l.running || !f.hostPort) {
    throw new ConflictError('INSTANCE_NOT_RUNNING', `instance '${name}' is not running, so guest port ${guestPort}/${proto} has no host port now`, {
      hint: `start it first (kumo start ${name}); a dynamic port is picked at start`,
    });
  }
  return f.hostPort;
}
