/**
 * Which proxy a download goes through, read from the environment the way curl reads it:
 *
 *   https://... -> https_proxy, else HTTPS_PROXY, else all_proxy / ALL_PROXY
 *   http://...  -> http_proxy,  else HTTP_PROXY,  else all_proxy / ALL_PROXY
 *   no_proxy (else NO_PROXY): a comma list of hosts that go direct. `*` matches every host; a
 *   name matches itself and every name under it (`example.com`, `.example.com`: both match
 *   `example.com` and `a.example.com`); an IP address matches itself; `10.0.0.0/8` a range;
 *   `host:port` only that port.
 *
 * The lower-case variable wins when both are set (as in curl). A proxy URL without a scheme is
 * http:// (as in curl); credentials in it (`http://user:pass@host:3128`) are sent as
 * Proxy-Authorization: Basic. Only http:// proxies are supported (CONNECT for https origins).
 */
import { isIP } from 'node:net';
import { KumoError } from '../core/errors.js';

export interface Proxy {
  /** The proxy's URL (with credentials, if any: never print it, print `shown`). */
  url: URL;
  /** The proxy's address for messages: http://host:port, credentials left out. */
  shown: string;
  /** The Proxy-Authorization header value, when the URL carries credentials. */
  auth?: string;
  /** The environment variable it came from (for messages). */
  from: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** The proxy went wrong: it refused the connection, asked for credentials, or refused the tunnel. */
export class ProxyError extends KumoError {
  readonly transient: boolean;
  constructor(proxy: Pick<Proxy, 'shown' | 'from'>, target: string, what: string, opts: { hint: string; status?: number; transient?: boolean; cause?: unknown }) {
    super('PROXY_ERROR', 'external', `cannot download ${target} through the proxy ${proxy.shown} (from ${proxy.from}): ${what}`, {
      hint: opts.hint,
      ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
      details: { url: target, proxy: proxy.shown, from: proxy.from, ...(opts.status !== undefined ? { status: opts.status } : {}) },
    });
    this.transient = opts.transient ?? false;
  }
}

function pick(env: Env, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

/** The address of a proxy for messages, without its credentials. */
export function showProxy(u: URL): string {
  return `${u.protocol}//${u.host}`;
}

/** Parse a proxy variable's value (a URL, or host:port meaning http://host:port). */
export function parseProxy(value: string, from: string): Proxy {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // never echo the value: it may hold a password
    throw new KumoError('PROXY_INVALID', 'invalid', `${from} is not a proxy URL`, { hint: `set ${from} to http://HOST:PORT (or http://USER:PASSWORD@HOST:PORT), or unset it`, details: { from } });
  }
  const shown = showProxy(url);
  if (url.protocol !== 'http:')
    throw new KumoError('PROXY_INVALID', 'unsupported', `${from} names a ${url.protocol.replace(':', '')} proxy (${shown}); kumo speaks to http:// proxies only`, {
      hint: `give an http:// proxy in ${from} (https downloads go through it with CONNECT, still encrypted end to end)`,
      details: { from, proxy: shown },
    });
  if (!url.hostname) throw new KumoError('PROXY_INVALID', 'invalid', `${from} names no proxy host`, { hint: `set ${from} to http://HOST:PORT`, details: { from } });
  const p: Proxy = { url, shown, from };
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    p.auth = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  return p;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, x) => n * 256 + Number(x), 0);
}

/** Does one no_proxy entry match this host and port? */
function matchesEntry(entry: string, host: string, port: string): boolean {
  let e = entry.trim().toLowerCase();
  if (!e) return false;
  if (e === '*') return true;
  // [v6]:port, host:port (one colon), a bare v6 address (several colons)
  let entryPort: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(e);
  if (v6) {
    e = v6[1]!;
    entryPort = v6[2];
  } else if ((e.match(/:/g) ?? []).length === 1) {
    const i = e.indexOf(':');
    entryPort = e.slice(i + 1);
    e = e.slice(0, i);
  }
  if (entryPort !== undefined && entryPort !== port) return false;
  const cidr = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(e);
  if (cidr) {
    if (isIP(host) !== 4) return false;
    const bits = Number(cidr[2]);
    if (bits > 32) return false;
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return ((ipv4ToInt(host) & mask) >>> 0) === ((ipv4ToInt(cidr[1]!) & mask) >>> 0);
  }
  if (isIP(e) || isIP(host)) return e === host;
  if (e.startsWith('*.')) e = e.slice(1);
  if (e.startsWith('.')) e = e.slice(1);
  return host === e || host.endsWith(`.${e}`);
}

/** Does no_proxy / NO_PROXY send this URL direct? */
export function bypassesProxy(u: URL, env: Env = process.env): boolean {
  const list = pick(env, 'no_proxy', 'NO_PROXY');
  if (!list) return false;
  const host = u.hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  return list.value.split(',').some((e) => matchesEntry(e, host, port));
}

/** The proxy for this URL, or undefined to connect directly. Throws PROXY_INVALID for a value that is not a proxy URL. */
export function proxyFor(u: URL, env: Env = process.env): Proxy | undefined {
  const v = u.protocol === 'https:' ? pick(env, 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY') : pick(env, 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY');
  if (!v || bypassesProxy(u, env)) return undefined;
  return parseProxy(v.value, v.name);
}
