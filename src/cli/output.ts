/**
 * Rendering: tables on a TTY, tab-separated plain text when piped, JSON with --json.
 * Colour only on a TTY and never with NO_COLOR or --no-color. Progress events become bars and
 * spinners on a TTY (stderr), plain lines otherwise, JSON lines with --json.
 */
import type { KumoEvent } from '../events/events.js';

export interface Column<T> {
  header: string;
  get: (row: T) => string | number | undefined | null;
  align?: 'left' | 'right';
}

export interface OutputOptions {
  json: boolean;
  color: boolean;
  stdout?: NodeJS.WriteStream | NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream | NodeJS.WritableStream;
}

export function colorWanted(noColorFlag: boolean, env: NodeJS.ProcessEnv = process.env, stream: { isTTY?: boolean } = process.stdout): boolean {
  if (noColorFlag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  return !!stream.isTTY && env.TERM !== 'dumb';
}

const codes = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39] } as const;

export class Output {
  readonly json: boolean;
  readonly color: boolean;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly tty: boolean;
  readonly errTty: boolean;
  private progress?: ProgressRenderer;

  constructor(o: OutputOptions) {
    this.json = o.json;
    this.color = o.color;
    this.stdout = o.stdout ?? process.stdout;
    this.stderr = o.stderr ?? process.stderr;
    this.tty = !!(this.stdout as NodeJS.WriteStream).isTTY;
    this.errTty = !!(this.stderr as NodeJS.WriteStream).isTTY;
  }

  paint(style: keyof typeof codes, s: string): string {
    if (!this.color) return s;
    const [a, b] = codes[style];
    return `\x1b[${a}m${s}\x1b[${b}m`;
  }

  line(s = ''): void {
    this.stdout.write(s + '\n');
  }

  /** A message for the user that is not data (goes to stderr, so pipes get only data). */
  note(s: string): void {
    this.clearProgress();
    this.stderr.write(s + '\n');
  }

  warn(s: string): void {
    this.note(this.paint('yellow', 'warning: ') + s);
  }

  /** Print one JSON document. */
  jsonDoc(value: unknown): void {
    this.stdout.write(JSON.stringify(value, null, 2) + '\n');
  }

  /** Print one JSON line (streams). */
  jsonLine(value: unknown): void {
    this.stdout.write(JSON.stringify(value) + '\n');
  }

  /** Print data: as JSON with --json, else through `human`. */
  data(value: unknown, human: () => void): void {
    if (this.json) this.jsonDoc(value);
    else human();
  }

  /** A table on a TTY; tab-separated values (with a header line) when piped. */
  table<T>(rows: readonly T[], cols: readonly Column<T>[]): void {
    const cells = rows.map((r) => cols.map((c) => fmtCell(c.get(r))));
    if (!this.tty) {
      this.line(cols.map((c) => c.header).join('\t'));
      for (const r of cells) this.line(r.join('\t'));
      return;
    }
    const natural = cols.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
    const width = terminalColumns(this.stdout);
    const widths = fitWidths(natural, width, 2);
    // Cells longer than their column end in an ellipsis; a line never reaches the last column (no wrap).
    const fmt = (vals: string[]) =>
      truncate(
        vals
          .map((v, i) => {
            const cell = truncate(v, widths[i]!);
            return cols[i]!.align === 'right' ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
          })
          .join('  ')
          .trimEnd(),
        width - 1,
      );
    this.line(this.paint('bold', fmt(cols.map((c) => c.header))));
    for (const r of cells) this.line(fmt(r));
  }

  /** Key/value block for `info` style commands. */
  fields(pairs: [string, string | number | undefined | null][]): void {
    const w = Math.max(...pairs.map(([k]) => k.length));
    for (const [k, v] of pairs) if (v !== undefined && v !== null && v !== '') this.line(`${this.paint('bold', (k + ':').padEnd(w + 1))} ${v}`);
  }

  /**
   * The event sink to give library calls. Give each of several tasks run at once its own `task`
   * (an image ref, a machine name): on a TTY each gets a live line of its own, its lines are
   * prefixed with it, and with --json its events carry it.
   */
  events(task?: string): (e: KumoEvent) => void {
    if (this.json) return (e) => this.stderr.write(JSON.stringify(task ? { task, event: e } : { event: e }) + '\n');
    this.progress ??= new ProgressRenderer(this);
    const p = this.progress;
    return (e) => p.handle(e, task);
  }

  clearProgress(): void {
    this.progress?.clear();
  }

  finishProgress(): void {
    this.progress?.finish();
  }
}

/** The width of the terminal a stream writes to (COLUMNS when it does not say; 80 otherwise). */
export function terminalColumns(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): number {
  const c = (stream as NodeJS.WriteStream).columns;
  if (c && c > 0) return c;
  const e = Number(env.COLUMNS);
  return Number.isInteger(e) && e > 0 ? e : 80;
}

/**
 * Column widths that fit `total` columns with `gap` spaces between them: the widest columns give
 * up room first, none below 3 characters (or its natural width when that is less). A table that
 * cannot fit even so keeps those minimums (each line is then cut at the terminal's edge).
 */
export function fitWidths(natural: readonly number[], total: number, gap: number): number[] {
  const w = [...natural];
  const room = total - 1 - gap * Math.max(0, w.length - 1); // never the last column of the terminal: some wrap there
  const min = natural.map((n) => Math.min(n, 3));
  let sum = w.reduce((a, b) => a + b, 0);
  while (sum > room) {
    let widest = -1;
    for (let i = 0; i < w.length; i++) if (w[i]! > min[i]! && (widest < 0 || w[i]! > w[widest]!)) widest = i;
    if (widest < 0) break;
    w[widest]!--;
    sum--;
  }
  return w;
}

/** `s` cut to `width` characters, the last one an ellipsis when cut. */
export function truncate(s: string, width: number): string {
  const chars = [...s];
  if (chars.length <= width) return s;
  return width <= 0 ? '' : chars.slice(0, width - 1).join('') + '\u2026';
}

function fmtCell(v: string | number | undefined | null): string {
  if (v === undefined || v === null) return '-';
  return String(v);
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Where a VM's sshd answers, as the driver reported it (`ssh on 192.168.122.5:22`). */
export function sshWhere(ep: { host: string; port: number } | undefined): string {
  return ep ? `ssh on ${ep.host}:${ep.port}` : 'its ssh address is not known yet';
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

const SPIN = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** One task's live state: its steps under way (in order) and its latest progress bar. */
interface Task {
  steps: Map<string, string>;
  bar?: { id: string; text: string };
}

/**
 * Draws the live lines on a TTY (stderr): one line per task under way (a spinner for its latest
 * step, or its progress bar), under the lines already finished; several tasks at once (a parallel
 * pull, several machines) each keep a line of their own. Plain lines otherwise.
 *
 * The block of live lines is redrawn in place: the cursor goes back to its first line, clears to
 * the end of the screen and writes each line cut to the terminal's width (a wrapped line would
 * throw the count off). A finished step is printed above the block and the block drawn again.
 */
class ProgressRenderer {
  private readonly tasks = new Map<string, Task>();
  /** Live lines on the screen now (the cursor is at the end of the last). */
  private drawn = 0;
  private frame = 0;
  private timer?: NodeJS.Timeout;
  private readonly started = new Map<string, number>();
  private lastRate = new Map<string, { t: number; v: number; rate: number }>();
  private lastPlain = new Map<string, number>();

  constructor(private readonly out: Output) {}

  private task(scope: string): Task {
    let t = this.tasks.get(scope);
    if (!t) this.tasks.set(scope, (t = { steps: new Map() }));
    return t;
  }

  handle(e: KumoEvent, scope = ''): void {
    const tty = this.out.errTty;
    const tag = scope ? `${scope}: ` : '';
    const key = `${scope}\0${e.type === 'log' ? '' : e.id}`;
    switch (e.type) {
      case 'log':
        this.print(tag + (e.level === 'warn' ? this.out.paint('yellow', 'warning: ') + e.message : e.message));
        return;
      case 'step': {
        const t = this.task(scope);
        if (e.state === 'start') {
          this.started.set(key, Date.now());
          if (tty) {
            t.steps.delete(e.id);
            t.steps.set(e.id, e.label);
            this.changed();
          } else this.print(`${tag}${e.label}…`);
        } else {
          const t0 = this.started.get(key);
          this.started.delete(key);
          const took = t0 !== undefined ? ` (${formatDuration(Date.now() - t0)})` : '';
          const mark = e.state === 'done' ? this.out.paint('green', '✓') : e.state === 'skip' ? this.out.paint('dim', '-') : this.out.paint('red', '✗');
          t.steps.delete(e.id);
          if (t.bar && (t.bar.id === e.id || !t.steps.size)) t.bar = undefined;
          if (!t.steps.size && !t.bar) this.tasks.delete(scope);
          this.print(`${mark} ${tag}${e.label}${took}${e.state === 'fail' && e.detail ? `: ${e.detail.split('\n')[0]}` : ''}`);
        }
        return;
      }
      case 'progress': {
        if (!tty) {
          // Plain mode: a line at most every 10% (or every 5 s for unknown totals).
          const now = Date.now();
          const pct = e.total ? Math.floor((e.current / e.total) * 10) : -1;
          const last = this.lastPlain.get(key);
          if (e.total ? pct !== last : last === undefined || now - last > 5000) {
            this.lastPlain.set(key, e.total ? pct : now);
            this.print(`${tag}${e.label}: ${describeAmount(e.current, e.total, e.unit)}`);
          }
          return;
        }
        this.task(scope).bar = { id: e.id, text: tag + this.bar(e, key) };
        this.changed();
        return;
      }
    }
  }

  private bar(e: Extract<KumoEvent, { type: 'progress' }>, key: string): string {
    const now = Date.now();
    const prev = this.lastRate.get(key);
    let rate = prev?.rate ?? 0;
    if (prev && now - prev.t >= 500) {
      const inst = ((e.current - prev.v) * 1000) / (now - prev.t);
      rate = rate ? rate * 0.7 + inst * 0.3 : inst;
      this.lastRate.set(key, { t: now, v: e.current, rate });
    } else if (!prev) this.lastRate.set(key, { t: now, v: e.current, rate: 0 });
    const width = 24;
    let s = `${e.label} `;
    if (e.total) {
      const f = Math.min(1, e.current / e.total);
      const n = Math.round(f * width);
      s += `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
    } else s += SPIN[this.frame % SPIN.length];
    s += ` ${describeAmount(e.current, e.total, e.unit)}`;
    if (e.unit === 'bytes' && rate > 0) {
      s += ` ${formatBytes(rate)}/s`;
      if (e.total) s += ` ETA ${formatDuration(((e.total - e.current) / rate) * 1000)}`;
    }
    return s;
  }

  /** The live lines: one per task, its bar or its latest step. */
  private lines(): string[] {
    const out: string[] = [];
    const spin = SPIN[this.frame % SPIN.length]!;
    for (const [scope, t] of this.tasks) {
      if (t.bar) out.push(t.bar.text);
      else if (t.steps.size) out.push(`${spin} ${scope ? `${scope}: ` : ''}${[...t.steps.values()].pop()}…`);
    }
    return out;
  }

  private changed(): void {
    const live = this.tasks.size > 0;
    if (live && !this.timer && this.out.errTty) {
      this.timer = setInterval(() => {
        this.frame++;
        this.redraw();
      }, 120);
      this.timer.unref();
    }
    if (!live && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.redraw();
  }

  /** Back to the first live line and clear from there to the end of the screen. */
  private erase(): string {
    if (!this.drawn) return '\r\x1b[2K';
    const up = this.drawn > 1 ? `\x1b[${this.drawn - 1}A` : '';
    this.drawn = 0;
    return `\r${up}\x1b[J`;
  }

  private draw(): string {
    const cols = (this.out.stderr as NodeJS.WriteStream).columns || 80;
    const lines = this.lines().map((l) => truncate(l, cols - 1));
    this.drawn = lines.length;
    return lines.join('\n');
  }

  private redraw(): void {
    if (!this.out.errTty) return;
    this.out.stderr.write(this.erase() + this.draw());
  }

  private print(s: string): void {
    if (this.out.errTty) this.out.stderr.write(`${this.erase()}${s}\n${this.draw()}`);
    else this.out.stderr.write(s + '\n');
  }

  clear(): void {
    if (this.out.errTty && this.drawn) this.out.stderr.write(this.erase());
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
    this.tasks.clear();
  }
}

function describeAmount(cur: number, total: number | undefined, unit: 'bytes' | 'items' | 'percent'): string {
  if (unit === 'bytes') return total ? `${formatBytes(cur)}/${formatBytes(total)}` : formatBytes(cur);
  if (unit === 'percent') return `${Math.round(cur)}%`;
  return total ? `${cur}/${total}` : String(cur);
}
