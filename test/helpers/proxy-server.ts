/**
 * A small HTTP proxy on 127.0.0.1 for tests: absolute-URI requests (GET http://host/path) are
 * forwarded to the origin, CONNECT host:port opens a raw tunnel; every request it sees is logged.
 * With `auth` set ('user:pass') it answers 407 to a request without that Proxy-Authorization.
 * `resolve` maps host names to addresses (so a test can name its 127.0.0.1 server 'localhost').
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface ProxyLog {
  method: string;
  /** The absolute URI (GET) or host:port (CONNECT). */
  target: string;
  /** The Proxy-Authorization header, when one was sent. */
  auth?: string;
  status: number;
}

export interface TestProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  requests: ProxyLog[];
  close(): Promise<void>;
}

export async function startProxy(opts: { auth?: string; resolve?: Record<string, string> } = {}): Promise<TestProxy> {
  const requests: ProxyLog[] = [];
  const sockets = new Set<Socket>();
  const want = opts.auth ? `Basic ${Buffer.from(opts.auth).toString('base64')}` : undefined;
  const addr = (h: string) => opts.resolve?.[h] ?? h;
  const authorised = (req: IncomingMessage, log: ProxyLog): boolean => {
    const got = req.headers['proxy-authorization'];
    if (got) log.auth = String(got);
    return !want || got === want;
  };

  const server: Server = createServer((req, res) => {
    const log: ProxyLog = { method: req.method ?? '', target: req.url ?? '', status: 0 };
    requests.push(log);
    if (!authorised(req, log)) {
      log.status = 407;
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="test"' }).end();
      return;
    }
    let u: URL;
    try {
      u = new URL(req.url ?? '');
    } catch {
      log.status = 400;
      res.writeHead(400).end('absolute URI expected\n');
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = request({ host: addr(u.hostname), port: u.port || 80, path: `${u.pathname}${u.search}`, method: req.method, headers }, (r) => {
      log.status = r.statusCode ?? 0;
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      log.status = 502;
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(up);
  });

  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const log: ProxyLog = { method: 'CONNECT', target: req.url ?? '', status: 0 };
    requests.push(log);
    if (!authorised(req, log)) {
      log.status = 407;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const m = /^(.+):(\d+)$/.exec(req.url ?? '');
    if (!m) {
      log.status = 400;
      client.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const up = connect(Number(m[2]), addr(m[1]!.replace(/^\[|\]$/g, '')), () => {
      log.status = 200;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.on('error', () => {
      if (!log.status) {
        log.status = 502;
        client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
      } else client.destroy();
    });
    client.on('error', () => up.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
