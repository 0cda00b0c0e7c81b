/**
 * Host ports for forwards. A free port is found by asking the kernel for one (bind to port 0),
 * which spreads parallel launches over the ephemeral range instead of probing 2222, 2223, ...
 * in the same order; the driver still retries when QEMU loses a race for it.
 *
 * Dynamic forwards (`0:80`, `{ guest: 80 }`): `assignPorts` gives each one a host port at start
 * (the one it had at the last start when that is still free, else a fresh one); when QEMU then
 * refuses the rule because another program took the port in between, the driver calls `repick`
 * and tries again. A fixed host port that is taken is a PortInUseError, never silently changed.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { PortForward } from '../config/port-forward.js';
import { ConflictError } from '../core/errors.js';

export type PortProto = 'tcp' | 'udp';

/** Whether `port` on `addr` can be bound right now (TCP, or UDP with proto 'udp'). */
export function portFree(port: number, addr = '127.0.0.1', proto: PortProto = 'tcp'): Promise<boolean> {
  return new Promise((resolve) => {
    if (proto === 'udp') {
      const s = createSocket('udp4');
      s.unref();
      s.once('error', () => {
        s.close();
        resolve(false);
      });
      s.bind({ port, address: addr, exclusive: true }, () => s.close(() => resolve(true)));
      return;
    }
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: addr, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function kernelPort(addr: string, proto: PortProto): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    if (proto === 'udp') {
      const s = createSocket('udp4');
      s.unref();
      s.once('error', reject);
      s.bind({ port: 0, address: addr, exclusive: true }, () => {
        const port = s.address().port;
        s.close(() => resolve(port));
      });
      return;
    }
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: addr, exclusive: true }, () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A port the kernel considers free on `addr`, avoiding `avoid`. */
export async function freePort(addr = '127.0.0.1', avoid: ReadonlySet<number> = new Set(), proto: PortProto = 'tcp'): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await kernelPort(addr, proto).catch((e: NodeJS.ErrnoException) => {
      throw new ConflictError('NO_FREE_PORT', `cannot bind a ${proto.toUpperCase()} port on ${addr}: ${e.code ?? e.message}`, {
        hint: addr === '127.0.0.1' ? 'close some programs that listen on local ports' : `is ${addr} an address of this machine? (see 'ip -4 addr')`,
      });
    });
    if (p && !avoid.has(p)) return p;
  }
  throw new ConflictError('NO_FREE_PORT', `no free ${proto.toUpperCase()} port found on ${addr}`, { hint: 'close some programs that listen on local ports' });
}

export class PortInUseError extends ConflictError {
  constructor(addr: string, port: number, what = 'forward') {
    super('PORT_IN_USE', `port ${addr}:${port} is already taken`, {
      hint: `choose another host port for the ${what}, or 0 to let kumo pick a free one (see 'ss -ltnp' for who holds it)`,
      details: { addr, port },
    });
  }
}

/** How many times a driver picks again when a dynamic port was taken between the pick and QEMU's bind. */
export const PORT_PICK_ATTEMPTS = 5;

/**
 * The forwards with a host port each, for a start: a fixed one as it is (a PortInUseError when
 * something holds it), a dynamic one with the port it had at the last start when that is still
 * free and not a fixed one's, else a fresh one. `avoid` holds ports already used (the ssh
 * forward); it is extended.
 */
export async function assignPorts(ports: readonly PortForward[], avoid: Set<number> = new Set()): Promise<PortForward[]> {
  const out: PortForward[] = [];
  for (const p of ports) if (!p.dynamic) avoid.add(p.hostPort); // a dynamic one never takes a fixed one's port
  for (const p of ports) {
    if (!p.dynamic) {
      if (!(await portFree(p.hostPort, p.hostAddr, p.proto))) throw new PortInUseError(p.hostAddr, p.hostPort, `forward to guest port ${p.guestPort}`);
      out.push(p);
      continue;
    }
    const keep = p.hostPort > 0 && !avoid.has(p.hostPort) && (await portFree(p.hostPort, p.hostAddr, p.proto));
    const hostPort = keep ? p.hostPort : await freePort(p.hostAddr, avoid, p.proto);
    avoid.add(hostPort);
    out.push({ ...p, hostPort });
  }
  return out;
}

/** `ports` with the dynamic forward at `index` given a fresh host port (its old one was taken meanwhile). */
export async function repick(ports: readonly PortForward[], index: number, avoid: Set<number>): Promise<PortForward[]> {
  const p = ports[index]!;
  avoid.add(p.hostPort);
  const hostPort = await freePort(p.hostAddr, avoid, p.proto);
  avoid.add(hostPort);
  return ports.map((q, i) => (i === index ? { ...q, hostPort } : q));
}
