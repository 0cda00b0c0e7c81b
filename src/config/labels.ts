/**
 * Instance labels and time-to-live, as users write them: the rules, the parsers and the matchers
 * (pure; the spec validator, the CLI and the instance layer share them).
 *
 *   labels: { team: ci, app.kubernetes.io/name: web }   key: letters, digits, '.', '-', '_', '/'
 *                                                       (1-128, starts and ends with a letter or
 *                                                       digit); value: up to 256 of letters,
 *                                                       digits and '.-_/:@+', may be empty
 *   ttl: 1h30m                                          90, 90s, 10m, 1h30m, 2d (seconds when bare)
 *
 * Selectors (`kumo list --label`, `kumo delete --label`): KEY=VALUE matches that value, KEY
 * matches the presence of the key; several selectors must all match.
 */
import { InvalidInputError } from '../core/errors.js';
import { parseDurationSec } from '../core/units.js';

export const LABEL_LIMITS = { keyMax: 128, valueMax: 256, count: 64 };
export const LABEL_KEY_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?$/;
export const LABEL_VALUE_RE = /^[A-Za-z0-9._/:@+-]*$/;
export const LABEL_RULE = `a key is 1-${LABEL_LIMITS.keyMax} letters, digits, '.', '-', '_' or '/' starting and ending with a letter or digit; a value is up to ${LABEL_LIMITS.valueMax} letters, digits or '.-_/:@+' (may be empty)`;

export type Labels = Record<string, string>;

/** What is wrong with a label key, or undefined. */
export function labelKeyProblem(key: string): string | undefined {
  if (!key) return 'the key is empty';
  if (key.length > LABEL_LIMITS.keyMax) return `the key is ${key.length} characters long (at most ${LABEL_LIMITS.keyMax})`;
  if (!LABEL_KEY_RE.test(key)) return `the key ${JSON.stringify(key)} has a character that is not allowed, or does not start and end with a letter or digit`;
  return undefined;
}

/** What is wrong with a label value, or undefined. */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > LABEL_LIMITS.valueMax) return `the value is ${value.length} characters long (at most ${LABEL_LIMITS.valueMax})`;
  if (!LABEL_VALUE_RE.test(value)) return `the value ${JSON.stringify(value)} has a character that is not allowed`;
  return undefined;
}

function badLabel(text: string, why: string): InvalidInputError {
  return new InvalidInputError('BAD_LABEL', `label ${JSON.stringify(text)}: ${why}`, { hint: `write KEY=VALUE, e.g. team=ci; ${LABEL_RULE}` });
}

/** Parse "KEY=VALUE" (a label to set); a BAD_LABEL error naming the label and the rule otherwise. */
export function parseLabel(text: string): [key: string, value: string] {
  const eq = text.indexOf('=');
  if (eq < 0) throw badLabel(text, "there is no '='");
  const key = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const why = labelKeyProblem(key) ?? labelValueProblem(value);
  if (why) throw badLabel(text, why);
  return [key, value];
}

/** Parse several "KEY=VALUE" texts into labels; a key given twice with different values is an error. */
export function parseLabels(texts: readonly string[]): Labels {
  const out: Labels = {};
  for (const t of texts) {
    const [k, v] = parseLabel(t);
    if (k in out && out[k] !== v) throw badLabel(t, `the key '${k}' is given twice (${JSON.stringify(out[k])} and ${JSON.stringify(v)})`);
    out[k] = v;
  }
  return out;
}

/** One selector: a key that must be there, with this value when `value` is given. */
export interface LabelSelector {
  key: string;
  value?: string;
}

/** Parse "KEY=VALUE" (that value) or "KEY" (the key is there). */
export function parseLabelSelector(text: string): LabelSelector {
  if (!text.includes('=')) {
    const why = labelKeyProblem(text);
    if (why) throw new InvalidInputError('BAD_LABEL', `label selector ${JSON.stringify(text)}: ${why}`, { hint: `write KEY=VALUE (that value) or KEY (any value); ${LABEL_RULE}` });
    return { key: text };
  }
  const [key, value] = parseLabel(text);
  return { key, value };
}

/** Whether `labels` has every selector (an empty list matches everything). */
export function matchesLabels(labels: Labels | undefined, selectors: readonly LabelSelector[]): boolean {
  return selectors.every((s) => labels !== undefined && Object.prototype.hasOwnProperty.call(labels, s.key) && (s.value === undefined || labels[s.key] === s.value));
}

/** Problems of a labels object from a spec (path, message), every one. */
export function labelsIssues(v: unknown): { path: string; message: string }[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [{ path: 'labels', message: 'must be a mapping of KEY: VALUE (strings)' }];
  const entries = Object.entries(v as Record<string, unknown>);
  const out: { path: string; message: string }[] = [];
  if (entries.length > LABEL_LIMITS.count) out.push({ path: 'labels', message: `has ${entries.length} labels (at most ${LABEL_LIMITS.count})` });
  for (const [k, val] of entries) {
    const why = labelKeyProblem(k) ?? (typeof val === 'string' ? labelValueProblem(val) : `the value is a ${val === null ? 'null' : typeof val}, not a string`);
    if (why) out.push({ path: `labels.${k}`, message: why });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Durations (time-to-live)

export const TTL_MAX_SEC = 365 * 24 * 3600;
/** A duration in seconds: a finite number as it is, a text as `parseDurationSec` reads it. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  return typeof v === 'string' ? parseDurationSec(v) : undefined;
}

export const TTL_HINT = 'give a duration such as 90s, 10m, 1h30m or 2d (a bare number is seconds), more than 0 and at most 365d';

/** What is wrong with a ttl value, or undefined (the seconds are then `parseDuration(v)`). */
export function ttlProblem(v: unknown): string | undefined {
  const s = parseDuration(v);
  if (typeof v === 'string' && /^\s*-/.test(v) && parseDuration(v.trim().slice(1)) !== undefined) return `${JSON.stringify(v)} is negative`;
  if (s === undefined) return `${JSON.stringify(v)} is not a duration`;
  if (s <= 0) return `${JSON.stringify(v)} is not more than zero`;
  if (s > TTL_MAX_SEC) return `${JSON.stringify(v)} is longer than 365 days`;
  return undefined;
}

/** "1h 29m", "42s": what is left until an expiry, for list and info ("expired" when past). */
export function formatRemaining(ms: number): string {
  if (ms <= 0) return 'expired';
  let s = Math.ceil(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', s && !d ? `${s}s` : ''].filter(Boolean);
  return parts.slice(0, 2).join(' ') || '0s';
}
