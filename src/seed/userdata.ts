/**
 * cloud-config composition: kumo's own part (its user account, ssh keys, hostname, host keys)
 * combined with the user's user-data.
 *
 * Rules (also in docs/seeds.md):
 *
 * 1. No user-data (or only blank lines): kumo's part alone, as one `#cloud-config` document.
 *
 * 2. The user's data is a `#cloud-config` document: it is parsed (invalid YAML is refused with its
 *    line and column; a document that is not a mapping is refused) and merged into ONE document:
 *    - list keys `users`, `groups`, `runcmd`, `bootcmd`, `write_files`, `packages`, `snap.commands`,
 *      `ssh_authorized_keys` and `mounts` (kumo's shared folders): kumo's items first, then the
 *      user's (exact duplicates dropped);
 *    - `users`: an entry of the user's that names kumo's account (same `name`) is merged into
 *      kumo's entry: the user's fields win, except `ssh_authorized_keys` (kumo's keys, then the
 *      user's) and `sudo` when the user's value is false/empty (kumo's account keeps its sudo
 *      rule). A bare `default` entry of the user's is kept, in the user's order after kumo's.
 *      Kumo's account is therefore always present;
 *    - `ssh_keys` (a mapping): merged key by key, the user's keys win;
 *    - every other key: the user's value wins (scalars such as `hostname`, `ssh_deletekeys`,
 *      `package_update`, and mappings other than `ssh_keys`, which are replaced whole).
 *
 * 3. The user's data is anything else cloud-init understands by its first line (`#!` script,
 *    `#include`, `#include-once`, `#cloud-boothook`, `#part-handler`, `#cloud-config-archive`,
 *    `#upstart-job`, `## template: jinja`) or is already a MIME multipart: the result is a MIME
 *    multipart/mixed message whose parts are the user's content (an existing multipart is nested
 *    as it is) followed by kumo's cloud-config, which carries
 *    `Merge-Type: dict(recurse_array,no_replace)+list(append)` so that cloud-init appends kumo's
 *    lists to whatever cloud-config the user's parts provide and never replaces the user's keys.
 *
 * 4. Anything else (plain text without a known header) is refused: cloud-init would ignore it.
 *
 * `classifyUserData` (src/core/user-data-format.ts) is the one place that tells kinds of user-data apart; the spec validator
 * (content or a path? is it valid?), `loadUserData` and `composeUserData` all use it.
 */
import { LineCounter, parseDocument, stringify, visit, isScalar, type Document, type ErrorCode } from 'yaml';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { fsError, InvalidInputError, ValidationError, type ValidationIssue } from '../core/errors.js';
import { classifyUserData, isUserDataContent, userDataProblem, USER_DATA_HINT, type UserDataKind } from '../core/user-data-format.js';

export { classifyUserData, isUserDataContent, userDataProblem, USER_DATA_HINT, type UserDataKind };

/** Keys whose values are lists that kumo and the user both contribute to (kumo's first). */
export const APPEND_KEYS = ['users', 'groups', 'runcmd', 'bootcmd', 'write_files', 'packages', 'ssh_authorized_keys', 'mounts'] as const;

/**
 * Read and check the user-data of a validated spec (undefined when none was given). gzip'd
 * user-data (which cloud-init accepts) is unpacked: kumo merges its own part into the content,
 * and the seed carries the result as text.
 */
export async function loadUserData(spec: { userDataPath?: string; userDataText?: string }): Promise<string | undefined> {
  if (spec.userDataText !== undefined) return spec.userDataText;
  if (!spec.userDataPath) return undefined;
  let data: Buffer;
  try {
    data = await readFile(spec.userDataPath);
  } catch (e) {
    const err = fsError(e, spec.userDataPath, 'read user-data file');
    throw new InvalidInputError('USER_DATA_UNREADABLE', err.message, { hint: 'give an existing cloud-init user-data file with --user-data', cause: e });
  }
  const why = userDataProblem(data);
  if (why) throw new ValidationError('invalid user-data', [{ path: `userData (${spec.userDataPath})`, message: why, hint: USER_DATA_HINT }]);
  if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
  return data.toString('utf8');
}

function yamlIssues(text: string, source: string): { value: unknown; issues: ValidationIssue[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const issues: ValidationIssue[] = [];
  for (const e of doc.errors) {
    const pos = e.linePos?.[0] ?? (Array.isArray(e.pos) ? lineCounter.linePos(e.pos[0]) : undefined);
    const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
    const msg = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    issues.push({
      path: source,
      message: `${where}: ${msg}`,
      hint: codeHint(e.code),
    });
  }
  if (!issues.length) issues.push(...structureIssues(doc, lineCounter, source));
  if (issues.length) return { value: undefined, issues };
  try {
    return { value: doc.toJS(), issues };
  } catch (e) {
    // An alias yaml refuses to expand (e.g. more aliases than its limit): a user's mistake, not ours.
    return { value: undefined, issues: [{ path: source, message: (e as Error).message.split('\n')[0]!, hint: 'use fewer YAML aliases (&anchor / *alias), or write the values out' }] };
  }
}

/**
 * What valid YAML may still hold that a cloud-config must not: an alias to an anchor that is not
 * set (yaml throws on it), an alias inside the node it names (a structure that contains itself,
 * which no merge or writer can walk), and a `__proto__` key (it would set the prototype of the
 * object it is merged into instead of becoming a key).
 */
function structureIssues(doc: Document.Parsed, lc: LineCounter, source: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const at = (range: readonly number[] | null | undefined) => {
    if (!range) return 'unknown position';
    const p = lc.linePos(range[0]!);
    return `line ${p.line}, column ${p.col}`;
  };
  visit(doc, {
    Alias(_, node, path) {
      const target = node.resolve(doc);
      if (!target) issues.push({ path: source, message: `${at(node.range)}: the alias *${node.source} names no anchor set before it`, hint: `set the anchor (&${node.source}) before the alias, or write the value out` });
      else if ((path as readonly unknown[]).includes(target)) issues.push({ path: source, message: `${at(node.range)}: the alias *${node.source} is inside the node it names (a structure that contains itself)`, hint: 'an alias may only repeat a node defined elsewhere; write the value out' });
    },
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === '__proto__') issues.push({ path: source, message: `${at(pair.key.range)}: the key '__proto__' is not allowed`, hint: 'remove it: cloud-init has no such key' });
    },
  });
  return issues;
}

function codeHint(code: ErrorCode): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'a key appears twice in one mapping; keep one';
    case 'TAB_AS_INDENT':
      return 'YAML indentation must use spaces, not tabs';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and the punctuation on that line';
    default:
      return 'fix the YAML; an online YAML linter shows the same position';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parse a `#cloud-config` document; refuses invalid YAML with its line and column. */
export function parseCloudConfig(text: string, source = 'user-data'): Obj {
  const { value, issues } = yamlIssues(text, source);
  if (issues.length) throw new ValidationError(`${source} is not valid YAML`, issues);
  if (value === null || value === undefined) return {};
  if (!isObj(value))
    throw new ValidationError(`${source} is not a cloud-config mapping`, [
      { path: source, message: `the document is a ${Array.isArray(value) ? 'list' : typeof value}, not a mapping of keys`, hint: 'a #cloud-config document is a YAML mapping such as "packages: [git]"' },
    ]);
  return value;
}

function appendUnique(a: unknown[], b: unknown[]): unknown[] {
  const out = [...a];
  const seen = new Set(a.map((x) => JSON.stringify(x)));
  for (const x of b) {
    const k = JSON.stringify(x);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(x);
    }
  }
  return out;
}

function asList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v;
  return [v]; // cloud-init accepts a single string in some list keys (e.g. users: "default")
}

function mergeUsers(kumoUsers: unknown[], userUsers: unknown[]): unknown[] {
  const out = kumoUsers.map((u) => (isObj(u) ? { ...u } : u));
  for (const u of userUsers) {
    const name = isObj(u) ? u.name : undefined;
    const idx = typeof name === 'string' ? out.findIndex((k) => isObj(k) && k.name === name) : -1;
    if (idx < 0) {
      if (!out.some((k) => JSON.stringify(k) === JSON.stringify(u))) out.push(u);
      continue;
    }
    const mine = out[idx] as Obj;
    const theirs = u as Obj;
    const merged: Obj = { ...mine, ...theirs };
    merged.ssh_authorized_keys = appendUnique(asList(mine.ssh_authorized_keys), asList(theirs.ssh_authorized_keys));
    if (!(merged.ssh_authorized_keys as unknown[]).length) delete merged.ssh_authorized_keys;
    if (mine.sudo !== undefined && (theirs.sudo === false || theirs.sudo === '' || theirs.sudo === null)) merged.sudo = mine.sudo;
    out[idx] = merged;
  }
  return out;
}

/** Merge two cloud-config mappings by the rules at the top of this file (kumo's, then the user's). */
export function mergeCloudConfig(kumoPart: Obj, user: Obj): Obj {
  const out: Obj = { ...kumoPart };
  for (const [k, v] of Object.entries(user)) {
    if (k === '__proto__') continue; // refused by parseCloudConfig; never assigned (it would replace out's prototype)
    if (k === 'users') out.users = mergeUsers(asList(kumoPart.users), asList(v));
    else if ((APPEND_KEYS as readonly string[]).includes(k)) out[k] = appendUnique(asList(kumoPart[k]), asList(v));
    else if (k === 'ssh_keys' && isObj(v) && isObj(kumoPart.ssh_keys)) out.ssh_keys = { ...kumoPart.ssh_keys, ...v };
    else out[k] = v;
  }
  return out;
}

export function cloudConfigText(obj: Obj): string {
  return '#cloud-config\n' + stringify(obj, { lineWidth: 0, minContentWidth: 0 });
}

/** A boundary that cannot occur in the parts: derived from their content, so output stays deterministic. */
function boundaryFor(parts: string[]): string {
  let salt = 0;
  for (;;) {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    h.update(String(salt++));
    const b = `===============kumo-${h.digest('hex').slice(0, 24)}==`;
    if (!parts.some((p) => p.includes(b))) return b;
  }
}

function mimePart(contentType: string, body: string, extraHeaders: string[] = [], filename?: string): string {
  const headers = [
    `Content-Type: ${contentType}; charset="utf-8"`,
    'MIME-Version: 1.0',
    'Content-Transfer-Encoding: 8bit',
    ...(filename ? [`Content-Disposition: attachment; filename="${filename}"`] : []),
    ...extraHeaders,
  ];
  return headers.join('\n') + '\n\n' + body;
}

/** Nest an existing MIME message as one part: its own headers (minus MIME-Version), then its body. */
function nestedMime(text: string): string {
  const m = /\r?\n\r?\n/.exec(text);
  const head = m ? text.slice(0, m.index) : text;
  const body = m ? text.slice(m.index + m[0].length) : '';
  // unfold continuation lines, drop MIME-Version (only the outer message has one)
  const lines = head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/).filter((l) => l && !/^mime-version\s*:/i.test(l));
  return lines.join('\n') + '\n\n' + body;
}

export const KUMO_MERGE_TYPE = 'dict(recurse_array,no_replace)+list(append)';

/**
 * Combine kumo's cloud-config part with the user's user-data (see the rules at the top of this
 * file). Returns the user-data text to write into the seed.
 */
export function composeUserData(kumoPart: Record<string, unknown>, userUserData?: string, source = 'user-data'): string {
  const c = classifyUserData(userUserData);
  switch (c.kind) {
    case 'empty':
      return cloudConfigText(kumoPart);
    case 'cloud-config':
      return cloudConfigText(mergeCloudConfig(kumoPart, parseCloudConfig(userUserData!, source)));
    case 'part':
    case 'mime': {
      const user = userUserData!.replace(/^\ufeff/, '');
      const kumoText = cloudConfigText(kumoPart);
      const parts = [
        c.kind === 'mime' ? nestedMime(user) : mimePart(c.contentType!, user.endsWith('\n') ? user : user + '\n', [], 'user-data'),
        mimePart('text/cloud-config', kumoText, [`Merge-Type: ${KUMO_MERGE_TYPE}`], 'kumo.cfg'),
      ];
      const boundary = boundaryFor(parts);
      let out = `Content-Type: multipart/mixed; boundary="${boundary}"\nMIME-Version: 1.0\n\n`;
      for (const p of parts) out += `--${boundary}\n${p}${p.endsWith('\n') ? '' : '\n'}`;
      out += `--${boundary}--\n`;
      return out;
    }
    default:
      throw new ValidationError(`${source} is not in a format cloud-init understands`, [
        {
          path: source,
          message: `the first line is '${userUserData!.split('\n', 1)[0]!.slice(0, 60)}'`,
          hint: "start it with '#cloud-config', '#!' (a script), '#include', or give a MIME multipart",
        },
      ]);
  }
}
