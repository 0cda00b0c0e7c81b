/**
 * `--json` error output of the real CLI: one JSON document on stdout, {error: {code, kind,
 * message, hint}}, the exit code of its kind (src/cli/exit.ts), the same message in plain text on
 * stderr and no stack trace; for errors of every kind a user meets, and with --json before or
 * after the command word.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo } from '../../helpers/cli.js';

let home = '';
let img = '';
before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-json-err-'));
  img = join(home, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']);
});
after(() => rm(home, { recursive: true, force: true }));

const k = (args: string[]) => kumo(args, { home: join(home, 'h'), env: { KUMO_ACCEL: 'tcg' } });

interface ErrDoc {
  error: { code: string; kind: string; message: string; hint?: string; details?: unknown };
}

async function jsonError(args: string[], exit: number, code: string, kind: string, message: RegExp, hint: RegExp | undefined): Promise<ErrDoc> {
  const r = await k(args);
  assert.equal(r.code, exit, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `${args.join(' ')}: stdout is not one document: ${r.stdout}`);
  const doc = JSON.parse(lines[0]!) as ErrDoc;
  assert.deepEqual(Object.keys(doc), ['error']);
  assert.equal(doc.error.code, code);
  assert.equal(doc.error.kind, kind);
  assert.match(doc.error.message, message);
  if (hint) assert.match(doc.error.hint ?? '', hint);
  // The human form on stderr says the same, without a stack.
  assert.equal(r.stderr.startsWith(`kumo: ${doc.error.message}\n`), true, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  return doc;
}

test('--json errors: shape and exit code per kind', async () => {
  await jsonError(['info', 'nope', '--json'], 4, 'INSTANCE_NOT_FOUND', 'not-found', /^no instance named 'nope'$/, /kumo list/);
  await jsonError(['--json', 'info', 'nope'], 4, 'INSTANCE_NOT_FOUND', 'not-found', /^no instance named 'nope'$/, /kumo list/);
  await jsonError(['list', '--bogus', '--json'], 2, 'USAGE', 'usage', /unknown option --bogus for 'kumo list'/, /kumo help list/);
  await jsonError(['start', '--json'], 2, 'USAGE', 'usage', /NAME|name/, /^usage: kumo start NAME \[--no-wait\] \[--timeout SEC\]$/);
  const inv = await jsonError(['create', img, '--name', 'Bad_Name', '--cpus', '0', '--json'], 3, 'INVALID', 'invalid', /invalid instance spec: 2 problems/, undefined);
  // Every problem is in the details, with its field and its own hint.
  const issues = (inv.error.details as { issues: { path: string; hint?: string }[] }).issues.sort((a, b) => a.path.localeCompare(b.path));
  assert.deepEqual(issues.map((i) => i.path), ['cpus', 'name']);
  assert.match(issues[1]!.hint ?? '', /lower-case letters/);
  assert.equal(typeof issues[0]!.hint, 'string');
  await jsonError(['image', 'rm', 'no-such-image', '--json'], 4, 'IMAGE_NOT_FOUND', 'not-found', /no-such-image/, /./);
  const ok = await k(['create', img, '--name', 'twice', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  await jsonError(['create', img, '--name', 'twice', '--json'], 5, 'INSTANCE_EXISTS', 'conflict', /an instance named 'twice' already exists/, /kumo delete twice/);
  await jsonError(['exec', 'twice', '--json', '--', 'true'], 5, 'INSTANCE_NOT_RUNNING', 'conflict', /twice/, /kumo start twice/);
});

test('--json given to the guest command after -- is not taken for kumo\'s', async () => {
  const r = await k(['exec', 'nope', '--', 'echo', '--json']);
  assert.equal(r.code, 4);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^kumo: no instance named 'nope'/);
});
