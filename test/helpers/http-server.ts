/**
 * A real HTTP server on 127.0.0.1 for tests and benchmarks: serves files from a folder and
 * in-memory documents (SHA256SUMS, simplestreams indexes), honours Range / If-Range, and can
 * misbehave on purpose, per path: answer an error status, cut the connection midway, send wrong
 * bytes, ignore Range, lie in Content-Range, stall with the connection open, or be slow.
 *
 * Also runnable on its own (the download benchmark serves from another process):
 *   node dist/test/helpers/http-server.js DIR     prints "PORT <n>" and serves DIR until killed
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, normalize } from 'node:path';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface Fault {
  /** Answer this status (with a short body) instead of the file. */
  status?: number;
  /** Send this many bytes of the body, then destroy the connection. */
  cutAfter?: number;
  /** Flip the byte at this offset of the file (a corrupt transfer). */
  corruptAt?: number;
  /** Answer 200 with the whole file even when a Range is asked. */
  ignoreRange?: boolean;
  /** Send at most this many bytes per second. */
  rateBytesPerSec?: number;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answer a Range request with 206 and this Content-Range header instead of the true one. */
  contentRange?: string;
  /** Send this many bytes of the body, then send nothing more and keep the connection open. */
  stallAfter?: number;
  /** Apply the fault this many times, then behave (default: always). */
  times?: number;
}

export interface RequestLog {
  method: string;
  path: string;
  range?: string;
  ifRange?: string;
  status?: number;
}

export interface TestServer {
  /** http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  port: number;
  requests: RequestLog[];
  /** Serve `body` at `path` (a string or bytes), replacing what was there. */
  put(path: string, body: string | Buffer): void;
  /** Serve the file at `file` under `path`. */
  putFile(path: string, file: string): void;
  fault(path: string, f: Fault): void;
  clearFaults(): void;
  close(): Promise<void>;
}

interface Entry {
  body?: Buffer;
  file?: string;
  mtime: Date;
}

export interface ServerOptions {
  /** Serve this folder's files too (after the in-memory entries). */
  root?: string;
  port?: number;
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const entries = new Map<string, Entry>();
  const faults = new Map<string, Fault[]>();
  const requests: RequestLog[] = [];
  const sockets = new Set<Socket>();

  const takeFault = (path: string): Fault | undefined => {
    const list = faults.get(path);
    if (!list?.length) return undefined;
    const f = list[0]!;
    if (f.times !== undefined) {
      f.times--;
      if (f.times <= 0) list.shift();
    }
    return f;
  };

  const lookup = async (path: string): Promise<{ size: number; mtime: Date; open: (start: number, end: number) => AsyncIterable<Buffer> } | undefined> => {
    const e = entries.get(path);
    if (e?.body) {
      const b = e.body;
      return { size: b.length, mtime: e.mtime, open: (s, end) => bufferStream(b.subarray(s, end + 1)) };
    }
    const file = e?.file ?? (opts.root ? join(opts.root, normalize(decodeURIComponent(path)).replace(/^(\.\.[/\\])+/, '')) : undefined);
    if (!file) return undefined;
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    return { size: st.size, mtime: st.mtime, open: (s, end) => createReadStream(file, { start: s, end, highWaterMark: 1024 * 1024 }) };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const log: RequestLog = { method: req.method ?? 'GET', path };
    if (req.headers.range) log.range = String(req.headers.range);
    if (req.headers['if-range']) log.ifRange = String(req.headers['if-range']);
    requests.push(log);
    const fault = takeFault(path);
    if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault?.status) {
      log.status = fault.status;
      res.writeHead(fault.status, { 'Content-Type': 'text/plain' });
      res.end(`fault ${fault.status}\n`);
      return;
    }
    const item = await lookup(path);
    if (!item) {
      log.status = 404;
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const etag = `"${item.size.toString(16)}-${Math.floor(item.mtime.getTime()).toString(16)}"`;
    let start = 0;
    let end = item.size - 1;
    let status = 200;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    const rangeOk = !fault?.ignoreRange && range && (!ifRange || ifRange === etag || ifRange === item.mtime.toUTCString());
    if (rangeOk) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(String(range));
      if (m) {
        start = Number(m[1]);
        if (m[2]) end = Math.min(end, Number(m[2]));
        if (start >= item.size) {
          log.status = 416;
          res.writeHead(416, { 'Content-Range': `bytes */${item.size}` });
          res.end();
          return;
        }
        status = 206;
      }
    }
    const headers: Record<string, string | number> = {
      'Content-Length': end - start + 1,
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Last-Modified': item.mtime.toUTCString(),
      'Content-Type': 'application/octet-stream',
    };
    if (status === 206) headers['Content-Range'] = fault?.contentRange ?? `bytes ${start}-${end}/${item.size}`;
    log.status = status;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') return void res.end();
    const src = item.open(start, end);
    let sent = 0;
    const cut = fault?.cutAfter;
    const rate = fault?.rateBytesPerSec;
    const t0 = Date.now();
    const pieces = async function* (): AsyncGenerator<Buffer> {
      // When slow, send small pieces so that the rate is smooth.
      for await (const c of src as AsyncIterable<Buffer>) {
        if (!rate) yield c;
        else for (let i = 0; i < c.length; i += 16384) yield c.subarray(i, i + 16384);
      }
    };
    for await (const chunk0 of pieces()) {
      let chunk = chunk0;
      if (fault?.corruptAt !== undefined && fault.corruptAt >= start + sent && fault.corruptAt < start + sent + chunk.length) {
        chunk = Buffer.from(chunk);
        const i = fault.corruptAt - (start + sent);
        chunk[i] = chunk[i]! ^ 0xff;
      }
      const stall = fault?.stallAfter;
      if (stall !== undefined && sent + chunk.length >= stall) {
        const part = chunk.subarray(0, Math.max(0, stall - sent));
        if (part.length) await write(res, part);
        (src as unknown as { destroy?: () => void }).destroy?.();
        return; // the connection stays open and silent until the client gives up (or close())
      }
      if (cut !== undefined && sent + chunk.length >= cut) {
        const part = chunk.subarray(0, Math.max(0, cut - sent));
        if (part.length) await write(res, part);
        (src as unknown as { destroy?: () => void }).destroy?.();
        res.socket?.destroy();
        return;
      }
      if (!(await write(res, chunk))) {
        (src as unknown as { destroy?: () => void }).destroy?.();
        return;
      }
      sent += chunk.length;
      if (rate) {
        const due = t0 + (sent / rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    put(path, body) {
      entries.set(path, { body: Buffer.isBuffer(body) ? body : Buffer.from(body), mtime: new Date(Math.floor(Date.now() / 1000) * 1000) });
    },
    putFile(path, file) {
      entries.set(path, { file, mtime: new Date() });
    },
    fault(path, f) {
      const list = faults.get(path) ?? [];
      list.push({ ...f });
      faults.set(path, list);
    },
    clearFaults() {
      faults.clear();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function write(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve(false);
    const ok = res.write(chunk);
    if (ok) return resolve(true);
    const done = (v: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(v);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

async function* bufferStream(b: Buffer): AsyncGenerator<Buffer> {
  const step = 256 * 1024;
  for (let i = 0; i < b.length; i += step) yield b.subarray(i, i + step);
}

// ------------------------------------------------------------------ fixtures

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}
export function sha512(b: Buffer | string): string {
  return createHash('sha512').update(b).digest('hex');
}

/** A GNU-style SHA256SUMS / SHA512SUMS document. */
export function sumsFile(files: Record<string, Buffer>, algo: 'sha256' | 'sha512' = 'sha256'): string {
  return Object.entries(files)
    .map(([name, b]) => `${algo === 'sha256' ? sha256(b) : sha512(b)}  ${name}\n`)
    .join('');
}

/** A BSD-style CHECKSUM document (Fedora, CentOS, Rocky). */
export function bsdChecksumFile(files: Record<string, Buffer>): string {
  return Object.entries(files)
    .map(([name, b]) => `# ${name}: ${b.length} bytes\nSHA256 (${name}) = ${sha256(b)}\n`)
    .join('');
}

export interface SsVersion {
  version: string;
  path: string;
  data: Buffer;
  ftype?: string;
}

/**
 * A simplestreams tree: index.json naming one products file, which holds the products and their
 * versions. Returns the two documents to serve at `streams/v1/index.json` and `productsPath`.
 */
export function simplestreams(products: Record<string, { arch: string; release: string; version: string; versions: SsVersion[] }>, productsPath = 'streams/v1/com.ubuntu.cloud:released:download.json'): { index: string; products: string; productsPath: string } {
  const prod: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(products)) {
    const versions: Record<string, unknown> = {};
    for (const v of p.versions) {
      versions[v.version] = { items: { [v.ftype ?? 'disk1.img']: { ftype: v.ftype ?? 'disk1.img', path: v.path, sha256: sha256(v.data), size: v.data.length, md5: 'x' } } };
    }
    prod[name] = { arch: p.arch, release: p.release, version: p.version, versions };
  }
  const index = {
    format: 'index:1.0',
    updated: new Date().toUTCString(),
    index: { 'com.ubuntu.cloud:released:download': { datatype: 'image-downloads', format: 'products:1.0', path: productsPath, products: Object.keys(products) } },
  };
  return { index: JSON.stringify(index), products: JSON.stringify({ format: 'products:1.0', content_id: 'com.ubuntu.cloud:released:download', products: prod }), productsPath };
}

// ------------------------------------------------------------------ standalone

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2];
  startServer({ ...(root ? { root } : {}) }).then((s) => {
    process.stdout.write(`PORT ${s.port}\n`);
    process.on('SIGTERM', () => s.close().then(() => process.exit(0)));
  });
}
