/**
 * HTTP(S) GET with redirects, timeouts, abort, typed errors and retries with backoff. node:http is
 * used directly (not fetch): it is faster for large bodies and gives us the raw stream.
 *
 * Proxies come from the environment as curl reads them (image/proxy.ts): an http:// URL goes to
 * the proxy as an absolute-URI request; an https:// URL goes through a CONNECT tunnel, and TLS
 * runs end to end with the origin (its certificate checked against the origin's name, as without
 * a proxy). A proxy that refuses, asks for credentials or refuses the tunnel is a ProxyError.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { InterruptedError, KumoError } from '../core/errors.js';
import { sleep as coreSleep } from '../core/time.js';
import { debug } from '../core/log.js';
import { proxyFor, ProxyError, type Env, type Proxy } from './proxy.js';

export const USER_AGENT = 'kumo (+https://github.com/kumo)';

/** The server answered with a status kumo cannot use (404, 500, ...). */
export class HttpError extends KumoError {
  readonly status: number;
  readonly url: string;
  constructor(url: string, status: number, statusText = '') {
    const hint =
      status === 404 || status === 410
        ? 'the file is not at that address: check the URL or the alias (a newer release may have replaced it), or run `kumo image sync`'
        : status >= 500
          ? 'the server failed; try again later or use a mirror (set the source base in KUMO_HOME/catalog.yaml)'
          : 'check the URL';
    super('HTTP_ERROR', 'external', `GET ${url} failed: HTTP ${status}${statusText ? ` ${statusText}` : ''}`, { hint, details: { url, status } });
    this.status = status;
    this.url = url;
  }
  /** 5xx, 408 and 429 may succeed on a retry; 4xx will not. */
  get transient(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

/** The host could not be reached at all, or the connection broke. */
export class NetworkError extends KumoError {
  readonly transient: boolean;
  constructor(url: string, cause: unknown, transient?: boolean) {
    const c = cause as NodeJS.ErrnoException;
    // A name that does not resolve will not resolve in a second either.
    transient ??= !(c?.code === 'ENOTFOUND');
    const what =
      c?.code === 'ENOTFOUND' || c?.code === 'EAI_AGAIN'
        ? 'host name not found'
        : c?.code === 'ECONNREFUSED'
          ? 'connection refused'
          : c?.code === 'ETIMEDOUT' || c?.code === 'KUMO_TIMEOUT'
            ? 'timed out'
            : c?.code === 'ECONNRESET' || c?.code === 'KUMO_PREMATURE'
              ? 'connection cut'
              : (c?.message ?? String(cause));
    super('HOST_UNREACHABLE', 'external', `cannot download ${url}: ${what}`, {
      hint: 'check the network, or point the source at a reachable mirror in KUMO_HOME/catalog.yaml; behind a proxy, set HTTPS_PROXY / HTTP_PROXY (and NO_PROXY) as for curl',
      cause,
      details: { url, code: c?.code },
    });
    this.transient = transient;
  }
}

export interface GetOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** No byte for this long (connect or between chunks): fail with a timeout. Default 30 s. */
  idleTimeoutMs?: number;
  maxRedirects?: number;
  /** Where the proxy variables are read (default process.env). */
  env?: Env;
}

export interface GetResponse {
  res: IncomingMessage;
  /** The URL after redirects. */
  url: string;
}

function abortError(signal: AbortSignal): KumoError {
  const r = signal.reason;
  return r instanceof KumoError ? r : new InterruptedError('download interrupted');
}

/** One GET; follows redirects; resolves with the response once headers arrive (any status). */
export function httpGet(url: string, opts: GetOptions = {}): Promise<GetResponse> {
  const maxRedirects = opts.maxRedirects ?? 10;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(abortError(opts.signal));
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return reject(new KumoError('BAD_URL', 'invalid', `not a valid URL: ${url}`, { hint: 'give an http:// or https:// URL' }));
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      return reject(new KumoError('BAD_URL', 'invalid', `unsupported URL scheme ${u.protocol} in ${url}`, { hint: 'give an http:// or https:// URL, or a local file path' }));
    let proxy: Proxy | undefined;
    try {
      proxy = proxyFor(u, opts.env ?? process.env);
    } catch (e) {
      return reject(e);
    }
    debug(() => `GET ${url}${opts.headers?.Range ? ` (${opts.headers.Range})` : ''}${proxy ? ` via ${proxy.shown}` : ''}`);
    const headers = { 'User-Agent': USER_AGENT, Accept: '*/*', ...opts.headers };
    const idle = opts.idleTimeoutMs ?? 30_000;
    if (!proxy) send((u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'GET', headers }));
    else if (u.protocol === 'http:')
      send(
        httpRequest({
          host: proxy.url.hostname.replace(/^\[|\]$/g, ''),
          port: proxy.url.port || 80,
          path: u.href,
          method: 'GET',
          headers: { ...headers, Host: u.host, ...(proxy.auth ? { 'Proxy-Authorization': proxy.auth } : {}) },
        }),
      );
    else {
      const p = proxy;
      tunnel(p, u, idle, opts.signal).then((socket) => {
        // TLS with the origin over the tunnel: the certificate is checked against the origin's name
        const host = u.hostname.replace(/^\[|\]$/g, '');
        const secure = () => {
          const t = tlsConnect({ socket, host, ...(isIP(host) ? {} : { servername: host }) });
          // closing the TLS layer leaves the tunnel's socket open: close it too
          t.once('close', () => socket.destroy());
          return t;
        };
        const req = httpsRequest(u, { method: 'GET', headers, agent: false, createConnection: secure });
        req.once('close', () => socket.destroy());
        send(req);
      }, reject);
    }

    function send(req: ClientRequest): void {
    let body: IncomingMessage | undefined;
    req.setTimeout(idle, () => {
      const e = Object.assign(new Error('timed out'), { code: 'KUMO_TIMEOUT' });
      // a body that stalls ends with this error (not the 'aborted' of the torn-down request)
      body?.destroy(e);
      req.destroy(e);
    });
    const onAbort = () => req.destroy(abortError(opts.signal!));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      // plain http through a proxy: the connection is the proxy's
      if (proxy && u.protocol === 'http:' && !(e instanceof KumoError)) return reject(proxyConnectError(proxy, url, e));
      reject(e instanceof KumoError ? e : new NetworkError(url, e));
    });
    req.on('response', (res) => {
      opts.signal?.removeEventListener('abort', onAbort);
      const status = res.statusCode ?? 0;
      if (proxy && u.protocol === 'http:' && status === 407) {
        res.resume();
        return reject(proxyAuthError(proxy, url));
      }
      if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
        res.resume();
        if (maxRedirects <= 0) return reject(new KumoError('HTTP_ERROR', 'external', `GET ${url}: too many redirects`, { hint: 'check the URL' }));
        const next = new URL(res.headers.location, u);
        // never from https down to plain http: the bytes could be changed on the way, unseen
        if (u.protocol === 'https:' && next.protocol !== 'https:')
          return reject(
            new KumoError('HTTP_DOWNGRADE', 'external', `GET ${url} redirects to ${next.protocol.replace(':', '')} (${next}): refused`, {
              hint: 'kumo does not follow a redirect from https to plain http; use an https mirror, or give the http:// URL yourself if you mean it',
              details: { url, location: next.toString() },
            }),
          );
        httpGet(next.toString(), { ...opts, maxRedirects: maxRedirects - 1 }).then(resolve, reject);
        return;
      }
      // Keep the idle timeout on the body too; abort tears the body down.
      body = res;
      res.setTimeout?.(idle);
      const onBodyAbort = () => res.destroy(abortError(opts.signal!));
      opts.signal?.addEventListener('abort', onBodyAbort, { once: true });
      res.once('close', () => opts.signal?.removeEventListener('abort', onBodyAbort));
      resolve({ res, url });
    });
    req.end();
    }
  });
}

function proxyAuthError(proxy: Proxy, url: string): ProxyError {
  return new ProxyError(proxy, url, proxy.auth ? 'it refused the credentials (HTTP 407)' : 'it asks for credentials (HTTP 407 Proxy Authentication Required)', {
    status: 407,
    hint: proxy.auth
      ? `check the user name and password in ${proxy.from} (http://USER:PASSWORD@HOST:PORT; %-encode special characters)`
      : `put the credentials in the proxy URL: ${proxy.from}=http://USER:PASSWORD@${proxy.url.host}`,
  });
}

function proxyConnectError(proxy: Proxy, url: string, e: unknown): ProxyError {
  const c = e as NodeJS.ErrnoException;
  const what =
    c?.code === 'ECONNREFUSED'
      ? 'connection to the proxy refused'
      : c?.code === 'ENOTFOUND' || c?.code === 'EAI_AGAIN'
        ? 'proxy host name not found'
        : c?.code === 'KUMO_TIMEOUT' || c?.code === 'ETIMEDOUT'
          ? 'the proxy did not answer (timed out)'
          : c?.code === 'ECONNRESET'
            ? 'the proxy cut the connection'
            : `cannot reach the proxy: ${c?.message ?? String(e)}`;
  return new ProxyError(proxy, url, what, {
    cause: e,
    transient: c?.code !== 'ENOTFOUND',
    hint: `check that the proxy runs and that ${proxy.from} names it; to reach this host directly, add it to NO_PROXY (or unset ${proxy.from})`,
  });
}

/** Open a CONNECT tunnel through `proxy` to the origin of `u`; resolves with the raw socket. */
function tunnel(proxy: Proxy, u: URL, idleMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const target = `${u.hostname}:${u.port || 443}`;
    const req = httpRequest({
      host: proxy.url.hostname.replace(/^\[|\]$/g, ''),
      port: proxy.url.port || 80,
      method: 'CONNECT',
      path: target,
      headers: { Host: target, 'User-Agent': USER_AGENT, ...(proxy.auth ? { 'Proxy-Authorization': proxy.auth } : {}) },
    });
    req.setTimeout(idleMs, () => req.destroy(Object.assign(new Error('timed out'), { code: 'KUMO_TIMEOUT' })));
    const onAbort = () => req.destroy(abortError(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      reject(e instanceof KumoError ? e : proxyConnectError(proxy, u.href, e));
    });
    req.on('connect', (res, socket) => {
      signal?.removeEventListener('abort', onAbort);
      req.setTimeout(0);
      const status = res.statusCode ?? 0;
      if (status === 200) return resolve(socket);
      socket.destroy();
      if (status === 407) return reject(proxyAuthError(proxy, u.href));
      reject(
        new ProxyError(proxy, u.href, `it refused the tunnel to ${target} (CONNECT answered HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''})`, {
          status,
          transient: status >= 500 || status === 408 || status === 429,
          hint: status === 403 ? `the proxy does not allow ${target}; ask its admin, or add the host to NO_PROXY to go direct` : 'check the proxy (its log says why), or add the host to NO_PROXY to go direct',
        }),
      );
    });
    // a proxy that answers CONNECT with a normal response (no tunnel)
    req.on('response', (res) => {
      signal?.removeEventListener('abort', onAbort);
      res.resume();
      const status = res.statusCode ?? 0;
      if (status === 407) return reject(proxyAuthError(proxy, u.href));
      reject(new ProxyError(proxy, u.href, `it refused the tunnel to ${target} (CONNECT answered HTTP ${status})`, { status, transient: status >= 500, hint: 'check the proxy, or add the host to NO_PROXY to go direct' }));
    });
    req.end();
  });
}

export interface RetryOptions {
  retries?: number;
  /** First backoff delay; doubles each time (with jitter), capped at 10 s. */
  backoffMs?: number;
  signal?: AbortSignal;
  onRetry?: (attempt: number, err: unknown, delayMs: number) => void;
}

/** Wait `ms` (abortable: an abort ends the wait as an interrupted download). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return coreSleep(ms, signal, abortError);
}

export function isTransient(e: unknown): boolean {
  if (e instanceof HttpError || e instanceof NetworkError || e instanceof ProxyError) return e.transient;
  return false;
}

/** Base backoff: KUMO_RETRY_BACKOFF_MS (tests, CI) or 500 ms. */
export function defaultBackoffMs(): number {
  const v = Number(process.env.KUMO_RETRY_BACKOFF_MS);
  return Number.isFinite(v) && v >= 0 && process.env.KUMO_RETRY_BACKOFF_MS !== '' ? v : 500;
}

export function backoffDelay(attempt: number, base: number): number {
  const d = Math.min(10_000, base * 2 ** (attempt - 1));
  return Math.round(d * (0.75 + Math.random() * 0.5));
}

/** Run `fn` again after transient failures, waiting longer each time. */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const retries = opts.retries ?? 4;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      if (attempt > retries || !isTransient(e)) throw e;
      const d = backoffDelay(attempt, opts.backoffMs ?? defaultBackoffMs());
      opts.onRetry?.(attempt, e, d);
      await sleep(d, opts.signal);
    }
  }
}

/** GET a small document (index, checksum file) as text, with retries. */
export async function fetchText(url: string, opts: RetryOptions & { maxBytes?: number } = {}): Promise<{ text: string; headers: IncomingMessage['headers']; url: string }> {
  const max = opts.maxBytes ?? 64 * 1024 * 1024;
  return withRetries(async () => {
    const { res, url: finalUrl } = await httpGet(url, { signal: opts.signal });
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      res.resume();
      throw new HttpError(url, status, res.statusMessage);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > max) throw new KumoError('HTTP_ERROR', 'external', `GET ${url}: document larger than ${max} bytes`, { hint: 'check the URL: it should name an index or checksum file' });
        chunks.push(c);
      }
    } catch (e) {
      if (e instanceof KumoError) throw e;
      throw new NetworkError(url, e);
    }
    if (!res.complete) throw new NetworkError(url, Object.assign(new Error('connection cut'), { code: 'KUMO_PREMATURE' }));
    return { text: Buffer.concat(chunks).toString('utf8'), headers: res.headers, url: finalUrl };
  }, opts);
}
