/**
 * The one place where errors become exit codes and messages.
 */
import { isKumoError, type ErrorKind } from '../core/errors.js';

export const EXIT_CODES: Record<ErrorKind, number> = {
  usage: 2,
  invalid: 3,
  'not-found': 4,
  conflict: 5,
  environment: 6,
  external: 7,
  timeout: 8,
  unsupported: 9,
  internal: 70,
  interrupted: 130,
};

export function exitCodeFor(err: unknown): number {
  if (isKumoError(err)) return EXIT_CODES[err.kind] ?? 1;
  return 70;
}

/** The error as the user sees it: `kumo: message` and `hint: ...`, or the stack with --debug. */
export function formatError(err: unknown, debug: boolean, paint: (s: string) => string = (s) => s): string {
  if (isKumoError(err)) {
    let s = `${paint('kumo:')} ${err.message}`;
    if (err.hint) s += `\n${paint('hint:')} ${err.hint}`;
    if (debug) {
      s += `\n[${err.code}] ${err.stack ?? ''}`;
      let c = err.cause;
      while (c) {
        s += `\ncaused by: ${(c as Error).stack ?? String(c)}`;
        c = (c as Error).cause;
      }
    }
    return s;
  }
  const e = err as Error;
  if (debug) return `kumo: internal error: ${e?.stack ?? String(err)}`;
  return `kumo: internal error: ${e?.message ?? String(err)}\nhint: this is a bug in kumo; run again with --debug and report the output`;
}

export function errorJson(err: unknown): Record<string, unknown> {
  if (isKumoError(err)) return { error: err.toJSON() };
  return { error: { code: 'INTERNAL', kind: 'internal', message: (err as Error)?.message ?? String(err) } };
}
