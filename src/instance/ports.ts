/**
 * Port forwards of an instance: add, remove, list. Applied at once while the instance runs
 * (through the driver's ports capability) and kept in its record for the next start.
 */
import type { KumoPaths } from '../config/paths.js';
import { parsePortForwardInput } from '../config/spec.js';
import { ConflictError, InvalidInputError, NotFoundError, ValidationError } from '../core/errors.js';
import { getDriver, requireCapability, type Driver, type InstanceRuntime, type PortForward } from '../driver/index.js';
import { portFree, PortInUseError } from '../driver/net.js';
import { lockInstance, readRecord, runtimeFor, writeRecord, type OpOptions } from './store.js';

export interface PortList {
  ssh: PortForward;
  ports: PortForward[];
  running: boolean;
}

function parsePort(s: unknown): PortForward {
  const p = parsePortForwardInput(s);
  if (typeof p === 'string') throw new ValidationError('invalid port forward', [{ path: 'port', message: p, hint: 'HOST:GUEST, e.g. 8080:80' }]);
  return p;
}

async function isRunning(driver: Driver, rt: InstanceRuntime): Promise<boolean> {
  const st = await driver.status(rt);
  return st.state === 'running' || st.state === 'paused';
}

/** Add a forward; applied at once when the instance runs (QMP hostfwd_add), and kept in instance.json. */
export async function addPort(paths: KumoPaths, name: string, spec: string | PortForward, opts: OpOptions = {}): Promise<PortForward> {
  // strings and objects alike go through the one port parser (an object is never trusted as is)
  const fwd = parsePort(spec);
  await using _lock = await lockInstance(paths, name, 'port add', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  if (rec.ports.some((p) => p.hostPort === fwd.hostPort && p.proto === fwd.proto && p.hostAddr === fwd.hostAddr) || (fwd.proto === 'tcp' && fwd.hostPort === rec.ssh.port)) {
    throw new ConflictError('PORT_EXISTS', `instance '${name}' already forwards ${fwd.hostAddr}:${fwd.hostPort}/${fwd.proto}`, { hint: `remove it first: kumo port rm ${name} ${fwd.hostPort}` });
  }
  const driver = await getDriver(rec.driver);
  const rt = runtimeFor(paths, rec);
  if (await isRunning(driver, rt)) await requireCapability(driver, 'ports', 'change port forwards while running').addPort(rt, fwd);
  else if (!(await portFree(fwd.hostPort, fwd.hostAddr))) throw new PortInUseError(fwd.hostAddr, fwd.hostPort, `forward to guest port ${fwd.guestPort}`);
  await writeRecord(paths, { ...rec, ports: [...rec.ports, fwd] });
  return fwd;
}

/** Remove a forward by host port ("8080", "8080/udp", "127.0.0.1:8080") or full HOST:GUEST. */
export async function removePort(paths: KumoPaths, name: string, spec: string, opts: OpOptions = {}): Promise<PortForward> {
  await using _lock = await lockInstance(paths, name, 'port rm', 5000, opts.signal);
  const rec = await readRecord(paths, name);
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+)(?::\d+)?(?:\/(tcp|udp))?$/.exec(spec.trim());
  if (!m) throw new InvalidInputError('INVALID_PORT', `'${spec}' is not a host port`, { hint: 'give the host port, e.g. 8080 or 8080/udp' });
  const hostPort = Number(m[2]);
  const proto = (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp';
  const fwd = rec.ports.find((p) => p.hostPort === hostPort && p.proto === proto && (!m[1] || p.hostAddr === m[1]));
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
