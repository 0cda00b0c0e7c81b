/**
 * What kind of text a cloud-init user-data is, by cloud-init's own rules (its first line, or MIME
 * headers), and why cloud-init would refuse it. Pure functions on text, kept in core because
 * two layers need them: the spec validator (config/, which checks inline user-data while it
 * validates) and the seed composer (seed/, which merges kumo's part into it).
 */
import { parse as parseYaml } from 'yaml';
import { gunzipSync } from 'node:zlib';

const PART_TYPES: [RegExp, string][] = [
  [/^#!/, 'text/x-shellscript'],
  [/^#include-once\b/, 'text/x-include-once-url'],
  [/^#include\b/, 'text/x-include-url'],
  [/^#cloud-config-archive\b/, 'text/cloud-config-archive'],
  [/^#cloud-config-jsonp\b/, 'text/cloud-config-jsonp'],
  [/^#cloud-boothook\b/, 'text/cloud-boothook'],
  [/^#part-handler\b/, 'text/part-handler'],
  [/^#upstart-job\b/, 'text/upstart-job'],
  [/^## template: *jinja\b/, 'text/jinja2'],
];

/** What kind of user-data this is, by cloud-init's rules (the first line, or MIME headers). */
export type UserDataKind = 'empty' | 'cloud-config' | 'mime' | 'part' | 'unknown';

export function classifyUserData(text: string | undefined): { kind: UserDataKind; contentType?: string } {
  if (text === undefined || text.trim() === '') return { kind: 'empty' };
  const t = text.replace(/^\ufeff/, '');
  if (/^#cloud-config[ \t]*\r?$/m.test(t.split('\n', 1)[0]!)) return { kind: 'cloud-config' };
  for (const [re, ct] of PART_TYPES) if (re.test(t)) return { kind: 'part', contentType: ct };
  const head = t.split(/\r?\n\r?\n/, 1)[0]!;
  if (/^(mime-version|content-type)\s*:/im.test(head) && /^content-type\s*:\s*multipart\//im.test(head)) return { kind: 'mime' };
  return { kind: 'unknown' };
}

/**
 * Whether a `userData` string is user-data content rather than a file path: it has a newline, or
 * its first line is one cloud-init recognises (the library's `userData: '#cloud-config\n...'`).
 */
export function isUserDataContent(s: string): boolean {
  if (s.includes('\n')) return true;
  const kind = classifyUserData(s).kind;
  return kind !== 'unknown' && kind !== 'empty';
}

export const USER_DATA_HINT = "cloud-init user-data starts with '#cloud-config' (YAML), '#!' (a script), '#include', '#cloud-boothook', '## template: jinja' or a MIME multipart header";

/** Why cloud-init would not accept this user-data (gzip'd or not), or undefined when it looks valid. */
export function userDataProblem(data: Buffer): string | undefined {
  let buf = data;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch {
      return 'is gzip data that does not decompress';
    }
  }
  const text = buf.toString('utf8');
  switch (classifyUserData(text).kind) {
    case 'empty':
      return 'is empty';
    case 'part':
    case 'mime':
      return undefined;
    case 'cloud-config': {
      let doc: unknown;
      try {
        doc = parseYaml(text);
      } catch (e) {
        return `is #cloud-config but not valid YAML: ${(e as Error).message.split('\n')[0]}`;
      }
      if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) return 'is #cloud-config but its YAML is not a mapping';
      return undefined;
    }
    default:
      return `starts with '${text.split('\n', 1)[0]!.replace(/\r$/, '').trimEnd().slice(0, 40)}', which cloud-init does not recognise`;
  }
}

