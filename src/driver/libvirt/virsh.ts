/**
 * Calls into libvirt through `virsh -c URI ...` (argv only, never a shell), with libvirt's error
 * text turned into typed errors that name the URI and say what to do: the daemon not running or
 * unreachable, permission denied on its socket, a URI no driver understands, a domain that does
 * not exist.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandFailedError, ConflictError, EnvironmentError, InvalidInputError, KumoError, NotFoundError } from '../../core/errors.js';
import { run, type RunResult } from '../../core/exec.js';

export const VIRSH = 'virsh';

/** The URI used when none is given: LIBVIRT_DEFAULT_URI, else qemu:///system for root and qemu:///session for others. */
export function defaultUri(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LIBVIRT_DEFAULT_URI) return env.LIBVIRT_DEFAULT_URI;
  return process.getuid?.() === 0 ? 'qemu:///system' : 'qemu:///session';
}

export interface ParsedUri {
  uri: string;
  /** qemu, test, ... */
  driver: string;
  /** ssh, tcp, tls, unix, libssh2, ... (undefined for a local URI). */
  transport?: string;
  host?: string;
  port?: number;
  user?: string;
  /** '/system' or '/session'. */
  path: string;
}

const URI_RE = /^([a-z][a-z0-9]*)(?:\+([a-z0-9]+))?:\/\/(?:([^@/]*)@)?(\[[^\]]+\]|[^/:?]*)(?::(\d+))?(\/[^?#]*)?(\?.*)?$/i;

/** Parse a libvirt URI; an InvalidInputError for anything that is not one. */
export function parseUri(uri: string): ParsedUri {
  const m = URI_RE.exec(uri);
  if (!m || /[\s\0]/.test(uri)) {
    throw new InvalidInputError('LIBVIRT_URI_INVALID', `'${uri}' is not a libvirt connection URI`, {
      hint: 'use e.g. qemu:///system, qemu:///session, qemu+ssh://user@host/system or qemu+tcp://host/system',
      details: { uri },
    });
  }
  const p: ParsedUri = { uri, driver: m[1]!.toLowerCase(), path: m[6] ?? '/' };
  if (m[2]) p.transport = m[2].toLowerCase();
  if (m[4]) p.host = m[4].replace(/^\[|\]$/g, '');
  if (m[5]) p.port = Number(m[5]);
  if (m[3]) p.user = decodeURIComponent(m[3]);
  return p;
}

/** The transports kumo connects through (`ext` runs a program and needs an explicit --connect). */
const TRANSPORTS = new Set(['unix', 'ssh', 'libssh', 'libssh2', 'tcp', 'tls', 'ext']);
/** URI parameters that run a program on this machine or the other end. */
const RUNS_PROGRAM = new Set(['command', 'netcat']);
/** URI parameters that turn off or replace the verification of the other end. */
const WEAKENS_VERIFY = new Set(['no_verify', 'known_hosts_verify', 'known_hosts', 'pkipath']);

/**
 * What in a libvirt URI must not come from a spec file: an unknown transport (always refused),
 * the `ext` transport and parameters that run a program (`command`, `netcat`) or weaken the
 * verification of the other end (`no_verify`, `known_hosts_verify`, `known_hosts`, `pkipath`).
 * Each is refused unless `explicit` (the user typed the URI on the command line, --connect).
 * Pure: throws an InvalidInputError naming what it found.
 */
export function checkUriSafety(uri: string, explicit: boolean): void {
  const p = parseUri(uri);
  if (p.transport && !TRANSPORTS.has(p.transport))
    throw new InvalidInputError('LIBVIRT_URI_UNSAFE', `'${uri}' uses the transport '${p.transport}', which kumo does not know`, {
      hint: `use one of: ${[...TRANSPORTS].filter((t) => t !== 'ext').join(', ')} (e.g. qemu+ssh://user@host/system)`,
      details: { uri },
    });
  if (explicit) return;
  const query = uri.includes('?') ? new URLSearchParams(uri.slice(uri.indexOf('?') + 1)) : new URLSearchParams();
  const risky = [...new Set([...query.keys()].map((k) => k.toLowerCase()))].filter((k) => RUNS_PROGRAM.has(k) || WEAKENS_VERIFY.has(k));
  if (p.transport === 'ext' || risky.length) {
    const what = [
      ...(p.transport === 'ext' ? ["the 'ext' transport (runs a program)"] : []),
      ...risky.map((k) => `'${k}=' (${RUNS_PROGRAM.has(k) ? 'runs a program' : 'weakens the verification of the other end'})`),
    ];
    throw new InvalidInputError('LIBVIRT_URI_UNSAFE', `the libvirt URI '${uri}' uses ${what.join(' and ')}: kumo takes that only from the command line`, {
      hint: 'give this URI yourself with --connect on the command line (not in a spec file or project file), or drop those parameters',
      details: { uri, parameters: risky },
    });
  }
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', 'localhost.localdomain']);

/** Whether the URI reaches this machine (no host, or a loopback name, or this host's name). */
export function isLocalUri(uri: string): boolean {
  const p = parseUri(uri);
  if (!p.host) return true;
  return LOOPBACK.has(p.host.toLowerCase()) || p.host === hostname();
}

/** The host a guest's forwarded ports are reached on from here: 127.0.0.1 for local URIs, else the URI's host. */
export function reachHost(uri: string): string {
  const p = parseUri(uri);
  return !p.host || LOOPBACK.has(p.host.toLowerCase()) ? '127.0.0.1' : p.host;
}

export class LibvirtUnavailableError extends EnvironmentError {}

/** Turn virsh's stderr into a typed error naming the URI; undefined when it is not a connection problem. */
export function connectionError(uri: string, stderr: string): KumoError | undefined {
  const s = stderr.replace(/\s+/g, ' ');
  const details = { uri, stderr: stderr.trim() };
  if (/no connection driver available|unexpected \w+ URI path|URI .* does not include a driver name|unsupported configuration: .*transport/i.test(s)) {
    return new InvalidInputError('LIBVIRT_URI_UNKNOWN', `libvirt does not understand the URI '${uri}': ${firstError(stderr)}`, {
      hint: "use qemu:///system, qemu:///session or qemu+ssh://host/system; is the QEMU driver installed? (apt-get install libvirt-daemon-driver-qemu)",
      details,
    });
  }
  if (/Failed to connect socket to '[^']*': Permission denied|authentication failed|access denied|Permission denied/i.test(s) && /connect|auth|socket|polkit/i.test(s)) {
    return new LibvirtUnavailableError('LIBVIRT_PERMISSION_DENIED', `permission denied connecting to libvirt at ${uri}: ${firstError(stderr)}`, {
      hint: process.getuid?.() === 0 ? 'check the daemon socket permissions (unix_sock_rw_perms in libvirtd.conf)' : "add your user to the 'libvirt' group and log in again, or use qemu:///session",
      details,
    });
  }
  // libvirtd answers but cannot start machines: QEMU's output goes through virtlogd, which is not running
  if (/Failed to connect socket to '[^']*virtlogd-sock'/i.test(s)) {
    return new LibvirtUnavailableError('LIBVIRT_VIRTLOGD_DOWN', `libvirt at ${uri} cannot start machines: its log daemon virtlogd is not running (${firstError(stderr)})`, {
      hint: safeLocal(uri)
        ? "start it (systemctl start virtlogd.socket, or run virtlogd -d as root), or set stdio_handler = \"file\" in the daemon's qemu.conf"
        : 'start virtlogd on that host (systemctl start virtlogd.socket)',
      details,
    });
  }
  if (/Failed to connect socket to '[^']*': (No such file or directory|Connection refused)|Cannot connect to daemon|unable to connect to server|Cannot recv data|Connection reset by peer|No route to host|Name or service not known|Could not resolve hostname|End of file while reading data|connect to host .* port/i.test(s)) {
    const local = safeLocal(uri);
    return new LibvirtUnavailableError('LIBVIRT_UNREACHABLE', `cannot reach libvirt at ${uri}: ${firstError(stderr)}`, {
      hint: local
        ? 'start the libvirt daemon (systemctl start libvirtd, or run libvirtd -d as root), then try again'
        : 'check that the host is up, that libvirtd runs and listens there, and that you can log in (ssh to it)',
      details,
    });
  }
  return undefined;
}

function safeLocal(uri: string): boolean {
  try {
    return isLocalUri(uri);
  } catch {
    return true;
  }
}

/** The first line of libvirt's message, without the `error: ` prefix and the generic "failed to connect" line. */
export function firstError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter((l) => l && !/^failed to connect to the hypervisor$/i.test(l));
  return lines.join(': ') || stderr.trim();
}

/** Whether virsh's error says the domain does not exist. */
export function isNoDomain(stderr: string): boolean {
  return /Domain not found|failed to get domain|no domain with matching/i.test(stderr);
}

export class DomainNotFoundError extends NotFoundError {
  constructor(domain: string, uri: string) {
    super('LIBVIRT_DOMAIN_NOT_FOUND', `libvirt at ${uri} has no domain '${domain}'`, { hint: "see 'virsh list --all'", details: { domain, uri } });
  }
}

export interface VirshOptions {
  /** Extra environment (e.g. LIBVIRT_DEFAULT_URI is ignored: -c is always given). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A connection to one libvirt URI, through virsh. */
export class Virsh {
  constructor(
    readonly uri: string,
    readonly opts: VirshOptions = {},
  ) {
    parseUri(uri);
  }

  /** Run `virsh -c URI args...`; returns the result whatever the exit code (connection errors throw). */
  async raw(args: readonly string[], o: { input?: string; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<RunResult> {
    const signal = o.signal ?? this.opts.signal;
    const r = await run(VIRSH, ['-q', '-c', this.uri, ...args], {
      allowFailure: true,
      timeoutMs: o.timeoutMs ?? this.opts.timeoutMs ?? 120_000,
      ...(signal ? { signal } : {}),
      ...(o.input !== undefined ? { input: o.input } : {}),
      env: { ...process.env, ...this.opts.env, LC_ALL: 'C' },
    });
    if (r.code !== 0) {
      const ce = connectionError(this.uri, r.stderr);
      if (ce) throw ce;
    }
    return r;
  }

  /** Run and throw a CommandFailedError (with libvirt's message) on failure. */
  async call(args: readonly string[], o: { input?: string; timeoutMs?: number; hint?: string; signal?: AbortSignal } = {}): Promise<string> {
    const r = await this.raw(args, o);
    if (r.code !== 0) throw new CommandFailedError(r.argv, r.code, r.signal, r.stderr, { hint: o.hint ?? `libvirt at ${this.uri} refused '${args[0]}': see the message above` });
    return r.stdout;
  }

  /** Connect and ask for the version: throws the typed connection errors. */
  async ping(): Promise<void> {
    await this.call(['uri'], { timeoutMs: 30_000 });
  }

  /** Names of all domains (running and defined). */
  async listDomains(): Promise<string[]> {
    const out = await this.call(['list', '--all', '--name']);
    return out.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  /** The domain's XML, or undefined when there is no such domain. */
  async dumpxml(domain: string, inactive = false): Promise<string | undefined> {
    const r = await this.raw(['dumpxml', ...(inactive ? ['--inactive'] : []), '--', domain]);
    if (r.code === 0) return r.stdout;
    if (isNoDomain(r.stderr)) return undefined;
    throw new CommandFailedError(r.argv, r.code, r.signal, r.stderr);
  }

  /** `domstate --reason`: e.g. ['running', 'booted'], ['shut off', 'destroyed']; undefined when absent. */
  async domstate(domain: string): Promise<{ state: string; reason?: string } | undefined> {
    const r = await this.raw(['domstate', '--reason', '--', domain], { timeoutMs: 30_000 });
    if (r.code !== 0) {
      if (isNoDomain(r.stderr)) return undefined;
      throw new CommandFailedError(r.argv, r.code, r.signal, r.stderr);
    }
    const m = /^\s*(.+?)\s*\((.*)\)\s*$/.exec(r.stdout.trim());
    return m ? { state: m[1]!, reason: m[2]! } : { state: r.stdout.trim() };
  }

  /** Define (or redefine) a domain from XML. */
  async define(xml: string): Promise<void> {
    const r = await withXmlFile(xml, (f) => this.raw(['define', '--file', f]));
    if (r.code !== 0) {
      const m = /domain '([^']*)' already exists with uuid/.exec(r.stderr);
      if (m) throw new ConflictError('LIBVIRT_DOMAIN_EXISTS', `libvirt at ${this.uri} already has a domain '${m[1]}' with another UUID`, { hint: 'choose another instance name', details: { uri: this.uri } });
      throw new CommandFailedError(r.argv, r.code, r.signal, r.stderr, { hint: 'libvirt rejected the domain XML; run with --debug to see it' });
    }
  }

  /** Send an HMP command to the domain's QEMU (`qemu-monitor-command --hmp`); returns its output. */
  async hmp(domain: string, command: string): Promise<string> {
    return this.call(['qemu-monitor-command', '--hmp', '--', domain, command], { timeoutMs: 30_000 });
  }
}

/** The name kumo records as the client in a domain's metadata. */
export function clientName(): string {
  return hostname();
}

/**
 * Run `fn` with the XML in a private temp file (virsh reads XML only from files; /dev/stdin
 * is not openable when stdin is a socket, as Node's pipes are).
 */
export async function withXmlFile<T>(xml: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-virsh-'));
  try {
    const f = join(dir, 'object.xml');
    await writeFile(f, xml, { mode: 0o600 });
    return await fn(f);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
