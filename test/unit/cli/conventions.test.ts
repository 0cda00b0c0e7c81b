// Pure parts of the CLI conventions: --format templates, table widths, the completer walk,
// docs/cli.md staying in step with the option tables, user config validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseTemplate, BadFormatError } from '../../../src/cli/format.js';
import { fitWidths, truncate, Output } from '../../../src/cli/output.js';
import { complete, renderCompletion, type CompletionSource } from '../../../src/cli/complete.js';
import { ALIASES, loadAllCommands } from '../../../src/cli/registry.js';
import { renderMarkdown } from '../../../src/cli/help.js';
import { validateUserConfig, setUserConfigKey, unsetUserConfigKey, specDefaults, UserConfigError } from '../../../src/config/user-config.js';
import { REPO } from '../../helpers/cli.js';

const FIELDS = ['Name', 'Status', 'CPUs', 'Labels', 'Ports'];
const get = (row: Record<string, unknown>, f: string) => row[f];

test('--format: fields, escapes, json, lists and maps; unknown fields and bad syntax are BAD_FORMAT naming the fields', () => {
  const t = parseTemplate<Record<string, unknown>>('{{.Name}}\\t{{ .Status }} {{.CPUs}} {{.Labels}} {{.Ports}} {{json .Name}}', FIELDS, get);
  assert.equal(t.render({ Name: 'web', Status: 'running', CPUs: 2, Labels: { a: '1', b: '2' }, Ports: ['80->8080', '22'] }), 'web\trunning 2 a=1,b=2 80->8080,22 "web"');
  assert.equal(t.render({ Name: 'x' }), 'x\t    "x"');
  assert.equal(parseTemplate<Record<string, unknown>>('{{json .}}', ['Name'], get).render({ Name: 'a', other: 1 }), '{"Name":"a"}');
  assert.equal(parseTemplate('plain', FIELDS, get).render({}), 'plain');
  for (const [f, re] of [
    ['{{.Nme}}', /no field 'Nme' \(did you mean 'Name'\?\)/],
    ['{{.Name', /has no closing '\}\}'/],
    ['{{Name}}', /cannot read '\{\{Name\}\}'/],
    ['{{.}}', /names no field/],
    ['{{index .Name 1}}', /cannot read/],
  ] as const) {
    assert.throws(() => parseTemplate(f, FIELDS, get), (e: unknown) => e instanceof BadFormatError && e.code === 'BAD_FORMAT' && re.test(e.message) && /\{\{\.Status\}\}/.test(e.hint ?? ''), f);
  }
});

test('table widths: the widest columns give way first, never below 3; cells end in an ellipsis; lines never wrap', () => {
  assert.deepEqual(fitWidths([4, 7, 20], 80, 2), [4, 7, 20]);
  // room 30 - 1 - 4 = 25 for 31: the 20 gives 6
  assert.deepEqual(fitWidths([4, 7, 20], 30, 2), [4, 7, 14]);
  assert.deepEqual(fitWidths([10, 10], 12, 2), [4, 5]); // a tie: the first gives way first
  assert.deepEqual(fitWidths([2, 10, 10], 5, 2), [2, 3, 3]);
  assert.equal(truncate('abcdef', 4), 'abc…');
  assert.equal(truncate('abc', 3), 'abc');
  let text = '';
  const stream = Object.assign(new Writable({ write: (c, _e, cb) => ((text += c), cb()) }), { isTTY: true, columns: 30 });
  const out = new Output({ json: false, color: false, stdout: stream as unknown as NodeJS.WriteStream });
  out.table(
    [{ n: 'web', s: 'running', i: 'https://example.org/a/very/long/image/name.qcow2' }],
    [
      { header: 'NAME', get: (r) => r.n },
      { header: 'STATUS', get: (r) => r.s },
      { header: 'IMAGE', get: (r) => r.i },
    ],
  );
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 2, 'no line wrapped into two');
  for (const l of lines) assert.ok([...l].length <= 29, `'${l}' fits 29 columns`);
  assert.match(lines[1]!, /^web {3}running {2}https:\/\/examp…$/);
});

const src: CompletionSource = { instances: async () => ['db', 'web'], images: async () => ['debian-12', 'ubuntu:24.04'], networks: async () => ['lan'] };

test('completion: commands and aliases, each command its own flags, option values, store names by argument position', async () => {
  const defs = await loadAllCommands();
  const c = (...words: string[]) => complete(defs, ALIASES, words, src);
  const names = (await c('')).candidates;
  assert.ok(names.includes('launch') && names.includes('ls') && names.includes('sh') && !names.includes('__complete'));
  const stop = (await c('stop', '--')).candidates;
  assert.ok(stop.includes('--force') && stop.includes('--json') && !stop.includes('--cpus'), stop.join(' '));
  const launch = (await c('launch', '--')).candidates;
  assert.ok(launch.includes('--cpus') && launch.includes('--no-wait') && !launch.includes('--force'), launch.join(' '));
  assert.deepEqual(await c('launch', '--accel', ''), { candidates: ['auto', 'kvm', 'tcg'], files: false });
  assert.deepEqual(await c('launch', '--user-data', ''), { candidates: [], files: true });
  assert.deepEqual(await c('launch', '--accel=t'), { candidates: ['--accel=auto', '--accel=kvm', '--accel=tcg'], files: false });
  assert.deepEqual(await c('launch', '--name', 'x', ''), { candidates: ['debian-12', 'ubuntu:24.04'], files: true });
  assert.deepEqual(await c('stop', 'web', ''), { candidates: ['db', 'web'], files: false }, 'variadic: more names');
  assert.deepEqual(await c('ssh', 'web', ''), { candidates: [], files: true }, 'the guest command');
  assert.deepEqual(await c('--home', '/x', 'rm', ''), { candidates: ['db', 'web'], files: false });
  assert.deepEqual(await c('clone', 'web', ''), { candidates: [], files: false }, "the new instance's name is the user's to type");
  assert.deepEqual((await c('image', '')).candidates.slice(0, 2), ['pull', 'list']);
  assert.deepEqual(await c('image', 'rm', ''), { candidates: ['debian-12', 'ubuntu:24.04'], files: true });
  assert.deepEqual((await c('help', 'ima')).candidates.includes('image'), true);
  assert.deepEqual((await c('help', 'image', '')).candidates.includes('pull'), true);
  assert.deepEqual(await c('nosuch', ''), { candidates: [], files: false });
  assert.equal(renderCompletion({ candidates: ['web', 'db', 'web'], files: true }, 'w'), 'web\n:files\n');
});

test('docs/cli.md is generated from the option tables (regenerate: node bin/kumo.js help --markdown > docs/cli.md)', async () => {
  const want = renderMarkdown(await loadAllCommands());
  const have = readFileSync(join(REPO, 'docs', 'cli.md'), 'utf8');
  assert.ok(have === want, 'docs/cli.md is stale: run node bin/kumo.js help --markdown > docs/cli.md');
  // it holds what --help shows: every command, its options
  assert.match(want, /## kumo set\n/);
  assert.match(want, /\| `--disk SIZE` \| grow the disk to SIZE/);
  assert.match(want, /Aliases: `kumo ls`/);
});

test('user config: every problem at once; set keeps comments and other keys; unset; spec defaults', async () => {
  assert.throws(
    () => validateUserConfig({ cpus: 'x', colour: 1, memory: '2G', 'default-instance': 'A_B' }, 'c.yaml', { drivers: ['qemu'] }),
    (e: unknown) => e instanceof UserConfigError && e.code === 'CONFIG_BAD_VALUE' && JSON.stringify((e.details!.issues as { path: string }[]).map((i) => i.path)) === '["colour","cpus","default-instance"]',
  );
  assert.throws(() => validateUserConfig({ colour: 1 }, 'c.yaml'), (e: unknown) => (e as UserConfigError).code === 'CONFIG_UNKNOWN_KEY');
  assert.throws(() => validateUserConfig(['a'], 'c.yaml'), (e: unknown) => (e as UserConfigError).code === 'CONFIG_PARSE');
  assert.deepEqual(validateUserConfig({ cpus: '4', memory: 2048, driver: 'qemu' }, 'c.yaml', { drivers: ['qemu'] }), { cpus: 4, memory: '2048', driver: 'qemu' });
  assert.deepEqual(specDefaults({ cpus: 4, 'ssh-key': '/k', 'default-instance': 'dev' }), { cpus: 4, sshKey: '/k' });
  const dir = await mkdtemp(join(tmpdir(), 'kumo-ucfg-'));
  try {
    const path = join(dir, 'sub', 'config.yaml');
    assert.equal(await setUserConfigKey('memory', '2G', { path }), '2G');
    await writeFile(path, '# mine\nmemory: 2G # big\n');
    await setUserConfigKey('cpus', '4', { path });
    assert.equal(await readFile(path, 'utf8'), '# mine\nmemory: 2G # big\ncpus: 4\n');
    await assert.rejects(setUserConfigKey('cpus', '99', { path }), (e: unknown) => (e as UserConfigError).code === 'CONFIG_BAD_VALUE');
    assert.equal(await unsetUserConfigKey('memory', { path }), true);
    assert.equal(await unsetUserConfigKey('memory', { path }), false);
    assert.equal(await readFile(path, 'utf8'), '# mine\ncpus: 4\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
