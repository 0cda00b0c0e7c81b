/**
 * The library is silent. Debug lines (the commands kumo runs, decisions it takes) go to a sink
 * that is a no-op unless the embedding program (the CLI with --debug, or a test) installs one.
 */
import { shellQuote } from './text.js';

export type DebugSink = (line: string) => void;

let sink: DebugSink | undefined;

export function setDebugSink(fn: DebugSink | undefined): void {
  sink = fn;
}

export function debugEnabled(): boolean {
  return sink !== undefined;
}

export function debug(line: string | (() => string)): void {
  if (!sink) return;
  sink(typeof line === 'function' ? line() : line);
}

/** Quote an argv for display only (never for execution: kumo never builds shell strings). */
export function formatArgv(argv: readonly string[]): string {
  return shellQuote(argv);
}
