/**
 * Host ports for forwards. A free port is found by asking the kernel for one (bind to port 0),
 * which spreads parallel launches over the ephemeral range instead of probing 2222, 2223, ...
 * in the same order; the driver still retries when QEMU loses a race for it.
 */
import { createServer } from 'node:net';
import { ConflictError } from '../core/errors.js';

/** Whether `port` on `addr` can be bound right now. */
export function portFree(port: number, addr = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: addr, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the kernel considers free on `addr`, avoiding `avoid`. */
export async function freePort(addr = '127.0.0.1', avoid: ReadonlySet<number> = new Set()): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen({ port: 0, host: addr, exclusive: true }, () => {
        const a = srv.address();
        const port = typeof a === 'object' && a ? a.port : 0;
        srv.close(() => resolve(port));
      });
    });
    if (p && !avoid.has(p)) return p;
  }
  throw new ConflictError('NO_FREE_PORT', `no free TCP port found on ${addr}`, { hint: 'close some programs that listen on local ports' });
}

export class PortInUseError extends ConflictError {
  constructor(addr: string, port: number, what = 'forward') {
    super('PORT_IN_USE', `port ${addr}:${port} is already taken`, {
      hint: `choose another host port for the ${what} (see 'ss -ltnp' for who holds it)`,
      details: { addr, port },
    });
  }
}
