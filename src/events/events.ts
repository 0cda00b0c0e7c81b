/**
 * Typed progress events. The library never prints; long operations take an `onEvent` sink and
 * emit these. The CLI draws bars and spinners from them on a TTY, plain lines otherwise, and
 * streams them as JSON lines with --json.
 */

export type KumoEvent =
  | { type: 'step'; id: string; label: string; state: 'start' | 'done' | 'fail' | 'skip'; detail?: string }
  | {
      type: 'progress';
      id: string;
      label: string;
      /** Units done so far. */
      current: number;
      /** Units in all, when known. */
      total?: number;
      unit: 'bytes' | 'items' | 'percent';
    }
  | { type: 'log'; level: 'info' | 'warn'; message: string; source?: string };

export type EventSink = (event: KumoEvent) => void;

export interface EventOptions {
  onEvent?: EventSink;
}

/** A small helper around an optional sink, so library code can emit without null checks. */
export class Emitter {
  constructor(private readonly sink?: EventSink) {}

  emit(e: KumoEvent): void {
    if (!this.sink) return;
    try {
      this.sink(e);
    } catch {
      /* a renderer must never break the operation it renders */
    }
  }

  info(message: string, source?: string): void {
    this.emit({ type: 'log', level: 'info', message, ...(source ? { source } : {}) });
  }

  warn(message: string, source?: string): void {
    this.emit({ type: 'log', level: 'warn', message, ...(source ? { source } : {}) });
  }

  progress(id: string, label: string, current: number, total: number | undefined, unit: 'bytes' | 'items' | 'percent' = 'bytes'): void {
    this.emit({ type: 'progress', id, label, current, ...(total !== undefined ? { total } : {}), unit });
  }

  /** Run `fn` as a named step: emits start, then done or fail. */
  async step<T>(id: string, label: string, fn: () => Promise<T>): Promise<T> {
    this.emit({ type: 'step', id, label, state: 'start' });
    try {
      const r = await fn();
      this.emit({ type: 'step', id, label, state: 'done' });
      return r;
    } catch (e) {
      this.emit({ type: 'step', id, label, state: 'fail', detail: (e as Error)?.message });
      throw e;
    }
  }
}
