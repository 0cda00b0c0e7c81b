/**
 * `--format` templates, Go-template-like as Docker and Lima take them: text with `{{.Field}}`
 * placeholders, `{{json .}}` (the whole row as JSON), `{{json .Field}}`, and the escapes `\t` and
 * `\n`. Parsed once before any row is rendered: an unknown field or a broken placeholder is a
 * BAD_FORMAT error that names it and lists the fields there are.
 */
import { InvalidInputError } from '../core/errors.js';
import { closest } from '../core/text.js';

type Part = { text: string } | { field: string | null; json: boolean };

export class BadFormatError extends InvalidInputError {
  constructor(message: string, fields: readonly string[]) {
    super('BAD_FORMAT', message, { hint: `fields: ${fields.map((f) => `{{.${f}}}`).join(' ')}; also {{json .}}`, details: { fields } });
  }
}

export interface Template<T> {
  render(row: T): string;
}

/** Parse `format` against the fields there are (`get` reads one field of a row). */
export function parseTemplate<T>(format: string, fields: readonly string[], get: (row: T, field: string) => unknown): Template<T> {
  const parts: Part[] = [];
  const text = format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    if (open < 0) {
      parts.push({ text: text.slice(i) });
      break;
    }
    if (open > i) parts.push({ text: text.slice(i, open) });
    const close = text.indexOf('}}', open + 2);
    if (close < 0) throw new BadFormatError(`--format: '{{' at position ${open + 1} has no closing '}}'`, fields);
    const inner = text.slice(open + 2, close).trim();
    const m = /^(json\s+)?\.([A-Za-z][A-Za-z0-9]*)?$/.exec(inner);
    if (!m) throw new BadFormatError(`--format: cannot read '{{${inner}}}' (write {{.Field}} or {{json .}})`, fields);
    const field = m[2] ?? null;
    if (field === null && !m[1]) throw new BadFormatError(`--format: '{{.}}' names no field`, fields);
    if (field !== null && !fields.includes(field)) {
      const near = closest(field, [...fields]);
      throw new BadFormatError(`--format: no field '${field}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}`, fields);
    }
    parts.push({ field, json: !!m[1] });
    i = close + 2;
  }
  return {
    render(row: T): string {
      return parts
        .map((p) => {
          if ('text' in p) return p.text;
          if (p.field === null) return JSON.stringify(Object.fromEntries(fields.map((f) => [f, get(row, f) ?? null])));
          const v = get(row, p.field);
          if (p.json) return JSON.stringify(v ?? null);
          if (v === undefined || v === null) return '';
          if (Array.isArray(v)) return v.join(',');
          if (typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}=${String(x)}`).join(',');
          return String(v);
        })
        .join('');
    },
  };
}
