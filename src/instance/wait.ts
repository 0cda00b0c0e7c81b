/**
 * Wait strategies (`kumo wait`, `vm.waitFor`, `launch({ waitFor })`): small plain objects, checked
 * over and over until each has held once, or a typed WAIT_TIMEOUT that names every condition
 * still open and what was seen last for it.
 *
 *   { port: 80 }                                    a guest TCP port accepts connections
 *   { http: { port: 80, path: '/', status: 200 } }  an HTTP GET from a guest port answers that status
 *   { log: /ready/ }                                a line of the serial console matches
 *   { logFile: '/var/log/app.log', log: /ready/ }   a line of a guest file matches
 *   { command: 'test -f /run/app.pid' }             a command exits 0 in the guest
 *
 * Port and HTTP checks run in the guest, over the instance's shared ssh connection, with bash's
 * /dev/tcp against 127.0.0.1 (no forward needed, no curl in the guest): a service bound to
 * 0.0.0.0, [::] or 127.0.0.1 counts. The console is read from the driver's console log on the host.
 * Polls start at 200 ms and back off to 1 s. Conditions that can never hold (a port out of range, a
 * bad regex, an HTTP path that is not one) are refused before anything is polled; an instance that
 * stops or crashes while waited for ends the wait at once.
 */
import { open, stat } from 'node:fs/promises';
import type { KumoPaths } from '../config/paths.js';
import { ConflictError, InterruptedError, InvalidInputError, KumoError, TimeoutError } from '../core/errors.js';
import { sleep } from '../core/time.js';
import { getDriver } from '../driver/index.js';
import type { ExecResult } from '../guest/ssh.js';
import { execIn } from './exec.js';
import { resolveSshTarget } from './ssh-target.js';
import { instanceFiles, readRecord, runtimeFor } from './store.js';

/** A guest TCP port accepts connections (checked in the guest, on 127.0.0.1). */
export interface PortStrategy {
  port: number;
}
/** An HTTP GET of `path` (default '/') from guest port `port` answers `status` (default 200). */
export interface HttpStrategy {
  http: { port: number; path?: string; status?: number };
}
/** A line of the serial console (or, with `logFile`, of that guest file) matches `log`. */
export interface LogStrategy {
  log: RegExp | string;
  logFile?: string;
}
/** A command exits 0 in the guest (a string goes to the guest's shell; an array is quoted word by word). */
export interface CommandStrategy {
  command: string | readonly string[];
}
export type WaitStrategy = PortStrategy | HttpStrategy | LogStrategy | CommandStrategy;

export interface WaitForOptions {
  /** Give up after this many ms (default 60000): a WaitTimeoutError. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const DEFAULT_WAIT_TIMEOUT_MS = 60_000;

/** Constructors for the plain objects (`waitFor(forPort(80), forHttp(80, '/health'))`). */
export const forPort = (port: number): PortStrategy => ({ port });
export const forHttp = (port: number, path = '/', status = 200): HttpStrategy => ({ http: { port, path, status } });
export const forLog = (log: RegExp | string): LogStrategy => ({ log });
export const forLogFile = (logFile: string, log: RegExp | string): LogStrategy => ({ logFile, log });
export const forCommand = (command: string | readonly string[]): CommandStrategy => ({ command });

/** What one check saw: whether the condition holds, and in words what was seen. */
export interface Observation {
  ok: boolean;
  seen: string;
}

/** What the checks need from an instance (a real one: `instanceWaitContext`; tests give their own). */
export interface WaitContext {
  name: string;
  /** Run a command in the guest (argv quoted word by word, or a shell string). */
  exec(command: string | readonly string[], o: { timeoutMs: number; signal?: AbortSignal }): Promise<ExecResult>;
  /** The serial console's log file on the host. */
  consoleLog: string;
  /** Why the instance cannot get there any more (stopped, crashed), or undefined while it runs. */
  gone(): Promise<string | undefined>;
}

/** A checked condition: its words and its check. */
export interface Condition {
  describe: string;
  check(ctx: WaitContext, o: { timeoutMs: number; signal?: AbortSignal }): Promise<Observation>;
}

function invalid(message: string, hint: string): InvalidInputError {
  return new InvalidInputError('INVALID_WAIT', message, { hint });
}

function checkPort(port: unknown, what: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`${what} ${JSON.stringify(port)} is not a port (1-65535)`, 'give the guest port, e.g. { port: 80 } or --port 80');
  }
  return port;
}

/** A RegExp from a RegExp or a pattern string (INVALID_WAIT when the pattern is not one). */
export function toRegExp(re: unknown): RegExp {
  if (re instanceof RegExp) return new RegExp(re.source, re.flags.replace(/[gy]/g, '')); // no lastIndex state
  if (typeof re !== 'string' || !re) throw invalid(`log pattern ${JSON.stringify(re)} is not a regular expression`, "give a pattern, e.g. --log 'listening on'");
  try {
    return new RegExp(re);
  } catch (e) {
    throw invalid(`log pattern '${re}' is not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`, 'JavaScript regex syntax; escape ( [ { . * + ? with a backslash to match them literally');
  }
}

/** "200", "/health=204": the path and status of `--http`. */
export function parseHttpFlag(s: string): { path: string; status: number } {
  const m = /^(.*?)(?:=(\d+))?$/.exec(s)!;
  const path = m[1] || '/';
  const status = m[2] !== undefined ? Number(m[2]) : 200;
  checkHttp(path, status);
  return { path, status };
}

function checkHttp(path: unknown, status: unknown): void {
  if (typeof path !== 'string' || !path.startsWith('/') || /[\s\x00-\x1f\x7f]/.test(path)) {
    throw invalid(`HTTP path ${JSON.stringify(path)} is not a path`, "give a path that starts with '/' and has no spaces, e.g. --http /health=200");
  }
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw invalid(`HTTP status ${JSON.stringify(status)} is not one (100-599)`, 'e.g. --http /health=204');
  }
}

function tail(s: string, n = 3): string {
  return s.trim().split('\n').slice(-n).join(' | ');
}

// Guest-side probes: bash's /dev/tcp, the port as $1, the path as $2 (never spliced into the script).
const PORT_SCRIPT = 'exec 3<>"/dev/tcp/127.0.0.1/$1"';
const HTTP_SCRIPT = [
  'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 90',
  'printf "GET %s HTTP/1.0\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n" "$2" >&3',
  'IFS= read -r line <&3 || exit 91',
  'printf "%s\\n" "$line"',
].join('\n');

/** The port of a refused connection in words, from bash's complaint. */
function connectSeen(r: ExecResult, port: number): string {
  const why = /connect: (.*)$/m.exec(r.stderr)?.[1]?.trim();
  return `guest port ${port}: ${why ? why.toLowerCase() : `not accepting (exit ${r.code}${r.stderr.trim() ? `: ${tail(r.stderr, 1)}` : ''})`}`;
}

/** Each strategy as a condition; every problem in the input is refused here, before any poll. */
export function conditionsFor(strategies: WaitStrategy | readonly WaitStrategy[]): Condition[] {
  const list = (Array.isArray(strategies) ? strategies : [strategies]) as readonly unknown[];
  if (!list.length) throw invalid('nothing to wait for', "give a condition, e.g. { port: 80 } (kumo wait: --port, --http, --log, --command)");
  return list.map((s): Condition => {
    if (!s || typeof s !== 'object') throw invalid(`${JSON.stringify(s)} is not a wait condition`, 'e.g. { port: 80 }, { http: { port: 80 } }, { log: /ready/ }, { command: "true" }');
    const o = s as Record<string, unknown>;
    const kinds = ['port', 'http', 'log', 'command'].filter((k) => o[k] !== undefined);
    if (kinds.length !== 1) {
      throw invalid(
        kinds.length ? `one wait condition has ${kinds.join(' and ')}: give each as its own condition` : `${JSON.stringify(s)} names no wait condition`,
        'e.g. [{ port: 80 }, { log: /ready/ }] (logFile goes with log)',
      );
    }
    if (o.logFile !== undefined && kinds[0] !== 'log') throw invalid('logFile needs log (the pattern to look for)', "e.g. { logFile: '/var/log/app.log', log: /ready/ }");
    if (o.port !== undefined) return portCondition(checkPort(o.port, 'port'));
    if (o.http !== undefined) {
      const h = o.http as Record<string, unknown>;
      if (!h || typeof h !== 'object') throw invalid('http needs { port, path?, status? }', "e.g. { http: { port: 80, path: '/', status: 200 } }");
      if (h.port === undefined) throw invalid('an HTTP wait needs the guest port', "e.g. { http: { port: 80 } } or kumo wait NAME --port 80 --http /");
      const port = checkPort(h.port, 'http port');
      const path = h.path ?? '/';
      const status = h.status ?? 200;
      checkHttp(path, status);
      return httpCondition(port, path as string, status as number);
    }
    if (o.log !== undefined) {
      const re = toRegExp(o.log);
      if (o.logFile === undefined) return consoleCondition(re);
      if (typeof o.logFile !== 'string' || !o.logFile.startsWith('/') || o.logFile.includes('\n')) {
        throw invalid(`log file ${JSON.stringify(o.logFile)} is not an absolute guest path`, "e.g. --log-file /var/log/app.log");
      }
      return guestFileCondition(o.logFile, re);
    }
    const c = o.command;
    if (!(typeof c === 'string' && c.trim()) && !(Array.isArray(c) && c.length && c.every((w) => typeof w === 'string'))) {
      throw invalid(`command ${JSON.stringify(c)} is not a command`, "give a shell command (e.g. 'test -f /run/app.pid') or an argv array");
    }
    return commandCondition(c as string | readonly string[]);
  });
}

function portCondition(port: number): Condition {
  return {
    describe: `guest port ${port} accepting connections`,
    async check(ctx, o) {
      const r = await ctx.exec(['bash', '-c', PORT_SCRIPT, 'kumo-wait', String(port)], o);
      return r.code === 0 ? { ok: true, seen: `guest port ${port} accepted a connection` } : { ok: false, seen: connectSeen(r, port) };
    },
  };
}

function httpCondition(port: number, path: string, status: number): Condition {
  return {
    describe: `HTTP ${status} from GET ${path} on guest port ${port}`,
    async check(ctx, o) {
      const r = await ctx.exec(['bash', '-c', HTTP_SCRIPT, 'kumo-wait', String(port), path], o);
      if (r.code === 90) return { ok: false, seen: connectSeen(r, port) };
      if (r.code === 91) return { ok: false, seen: `guest port ${port} closed the connection without an answer` };
      const line = r.stdout.trim().split('\n')[0] ?? '';
      const m = /^HTTP\/\d(?:\.\d)?\s+(\d{3})/.exec(line);
      if (!m) return { ok: false, seen: r.code ? `probe exited ${r.code}: ${tail(r.stderr) || '(no output)'}` : `not an HTTP answer: ${JSON.stringify(line.slice(0, 80))}` };
      return { ok: Number(m[1]) === status, seen: `HTTP status ${m[1]} (${line.trim().slice(0, 80)})` };
    },
  };
}

/** The console's lines, read on from where the last check stopped (the log of the current start). */
function consoleCondition(re: RegExp): Condition {
  let pos = 0;
  let partial = '';
  let last = '';
  return {
    describe: `a serial console line matching /${re.source}/${re.flags}`,
    async check(ctx) {
      let size: number;
      try {
        size = (await stat(ctx.consoleLog)).size;
      } catch {
        return { ok: false, seen: 'no serial console output yet' };
      }
      if (size < pos) [pos, partial] = [0, '']; // a new start truncated the log
      if (size > pos) {
        const fh = await open(ctx.consoleLog, 'r');
        try {
          const buf = Buffer.alloc(size - pos);
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          pos += bytesRead;
          partial += buf.subarray(0, bytesRead).toString('utf8');
        } finally {
          await fh.close();
        }
      }
      const lines = partial.split('\n');
      partial = lines.pop() ?? ''; // kept for the next round, but matched now too
      for (const raw of [...lines, partial]) {
        const l = cleanLine(raw);
        if (!l) continue;
        if (re.test(l)) return { ok: true, seen: `console: ${l}` };
        last = l;
      }
      return { ok: false, seen: last ? `last console line: ${last}` : 'no serial console output yet' };
    },
  };
}

/** A console line without terminal escapes and carriage returns. */
function cleanLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b[()][0-9A-Za-z]/g, '').replace(/[\r\x00-\x08\x0b-\x1f\x7f]/g, '').trim();
}

/** Lines of a guest file; its last MiB is read each round (a log that grows beyond is matched at its end). */
function guestFileCondition(file: string, re: RegExp): Condition {
  return {
    describe: `a line of ${file} matching /${re.source}/${re.flags}`,
    async check(ctx, o) {
      const r = await ctx.exec(['tail', '-c', '1048576', '--', file], o);
      if (r.code !== 0) return { ok: false, seen: /No such file/i.test(r.stderr) ? `${file} does not exist yet` : `cannot read ${file}: ${tail(r.stderr) || `exit ${r.code}`}` };
      const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim());
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return { ok: true, seen: `${file}: ${hit}` };
      return { ok: false, seen: lines.length ? `last line of ${file}: ${lines[lines.length - 1]!.trim().slice(0, 200)}` : `${file} is empty` };
    },
  };
}

function commandCondition(command: string | readonly string[]): Condition {
  const shown = typeof command === 'string' ? command : command.join(' ');
  return {
    describe: `command '${shown}' succeeding`,
    async check(ctx, o) {
      const r = await ctx.exec(command, o);
      if (r.code === 0) return { ok: true, seen: `'${shown}' exited 0` };
      const out = tail(r.stderr) || tail(r.stdout);
      return { ok: false, seen: `'${shown}' exited ${r.code}${r.code === 127 ? ' (command not found)' : ''}${out ? `: ${out}` : ''}` };
    },
  };
}

/** The wait ran out of time: names each condition that did not hold and what was seen last for it. */
export class WaitTimeoutError extends TimeoutError {
  constructor(name: string, timeoutMs: number, open: { describe: string; seen: string }[], held: string[]) {
    const s = Math.round(timeoutMs / 100) / 10;
    const lines = open.map((c) => `  ${c.describe}: ${c.seen}`);
    super('WAIT_TIMEOUT', `instance '${name}': timed out after ${s} s waiting for ${open.length === 1 ? `${open[0]!.describe}; last seen: ${open[0]!.seen}` : `${open.length} conditions:\n${lines.join('\n')}`}`, {
      hint: `give it more time (--timeout, timeoutMs), or look inside: kumo logs ${name}, kumo exec ${name} -- ...`,
      details: { timeoutMs, conditions: [...open.map((c) => ({ condition: c.describe, held: false, lastSeen: c.seen })), ...held.map((d) => ({ condition: d, held: true }))] },
    });
  }
}

export interface WaitResult {
  /** Each condition in words, with what was seen when it held. */
  held: { condition: string; seen: string }[];
  elapsedMs: number;
}

/**
 * Poll `conditions` until each has held once (all must hold), or throw: WaitTimeoutError at the
 * deadline, INSTANCE_DIED when the instance stops meanwhile, InterruptedError on the signal.
 */
export async function waitConditions(ctx: WaitContext, conditions: readonly Condition[], o: WaitForOptions = {}): Promise<WaitResult> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidInputError('INVALID_TIMEOUT', `timeout ${timeoutMs} is not a positive number of milliseconds`, { hint: 'e.g. { timeoutMs: 30000 } or --timeout 30s' });
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  const open = conditions.map((c) => ({ c, seen: 'not checked yet' }));
  const held: { condition: string; seen: string }[] = [];
  const interrupted = () => new InterruptedError(`waiting for '${ctx.name}' was interrupted`);
  let delay = 200;
  for (;;) {
    if (o.signal?.aborted) throw interrupted();
    const gone = await ctx.gone();
    if (gone) {
      throw new KumoError('INSTANCE_DIED', 'external', `instance '${ctx.name}' is not running any more (${gone}) while waiting for ${open.map((x) => x.c.describe).join(', ')}`, {
        hint: `see its console: kumo logs ${ctx.name}`,
        details: { lastSeen: Object.fromEntries(open.map((x) => [x.c.describe, x.seen])) },
      });
    }
    for (const x of [...open]) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let r: Observation;
      try {
        r = await x.c.check(ctx, { timeoutMs: Math.max(1000, Math.min(10_000, left)), ...(o.signal ? { signal: o.signal } : {}) });
      } catch (e) {
        if (o.signal?.aborted) throw interrupted();
        if (!(e instanceof KumoError)) throw e;
        r = { ok: false, seen: e.message.split('\n')[0]! }; // an ssh hiccup or a check's own timeout: try again
      }
      x.seen = r.seen;
      if (r.ok) {
        open.splice(open.indexOf(x), 1);
        held.push({ condition: x.c.describe, seen: r.seen });
      }
    }
    if (!open.length) return { held, elapsedMs: Date.now() - t0 };
    const left = deadline - Date.now();
    if (left <= 0) throw new WaitTimeoutError(ctx.name, timeoutMs, open.map((x) => ({ describe: x.c.describe, seen: x.seen })), held.map((h) => h.condition));
    await sleep(Math.min(delay, left), o.signal, interrupted);
    delay = Math.min(1000, Math.round(delay * 1.5));
  }
}

/** The context of a real instance: exec over its shared ssh connection, its console log, its driver's status. */
export async function instanceWaitContext(paths: KumoPaths, name: string): Promise<WaitContext> {
  const rec = await readRecord(paths, name);
  const driver = await getDriver(rec.driver);
  const rt = runtimeFor(paths, rec);
  const gone = async () => {
    const st = await driver.status(rt);
    return st.state === 'stopped' || st.state === 'crashed' ? `${st.state}${st.detail ? `: ${st.detail}` : ''}` : undefined;
  };
  const why = await gone();
  if (why) throw new ConflictError('INSTANCE_NOT_RUNNING', `instance '${name}' is not running (${why}), so nothing can be waited for`, { hint: `start it first: kumo start ${name}` });
  const target = await resolveSshTarget(paths, rec);
  return {
    name,
    consoleLog: driver.consoleLogPath?.(rt) ?? instanceFiles(paths, name).serialLog,
    exec: (command, o) => execIn(target, command, o),
    gone,
  };
}

/** Wait until every strategy holds on instance `name` (see the module comment). */
export async function waitForInstance(paths: KumoPaths, name: string, strategies: WaitStrategy | readonly WaitStrategy[], o: WaitForOptions = {}): Promise<WaitResult> {
  const conditions = conditionsFor(strategies); // bad input fails before anything is polled
  return waitConditions(await instanceWaitContext(paths, name), conditions, o);
}
