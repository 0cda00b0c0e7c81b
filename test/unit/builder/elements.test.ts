import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadElementSet, resolveElements, elementSearchPath, listElements, builtinElementsDir } from '../../../src/builder/elements.js';
import { isKumoError } from '../../../src/core/errors.js';
import { requestedElements, recipeHash } from '../../../src/builder/builder.js';

async function tree(files: Record<string, string | { data: string; mode: number }>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-elements-'));
  for (const [p, v] of Object.entries(files)) {
    const full = join(dir, p);
    await mkdir(join(full, '..'), { recursive: true });
    if (typeof v === 'string') await writeFile(full, v);
    else await writeFile(full, v.data, { mode: v.mode });
  }
  return dir;
}

test('built-in elements include the base OS and the vm, cloud-init, openssh-server, growroot, sysprep elements', () => {
  const names = [...listElements([builtinElementsDir()]).keys()];
  for (const n of ['debian', 'vm', 'cloud-init', 'openssh-server', 'growroot', 'sysprep', 'fast-boot']) assert.ok(names.includes(n), n);
  assert.ok(!names.includes('.runner'));
});

test('element-deps are resolved transitively, each element once, dependencies first', async (t) => {
  const dir = await tree({ 'a/element-deps': 'b\n# comment\nc\n', 'b/element-deps': 'c\n', 'c/README': '' });
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.deepEqual(resolveElements(['a'], [dir]).map((e) => e.name), ['c', 'b', 'a']);
});

test('a cycle in element-deps is an error that names the cycle', async (t) => {
  const dir = await tree({ 'a/element-deps': 'b\n', 'b/element-deps': 'c\n', 'c/element-deps': 'a\n' });
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.throws(
    () => resolveElements(['a'], [dir]),
    (e: unknown) => isKumoError(e) && e.code === 'ELEMENT_CYCLE' && e.message.includes('a -> b -> c -> a'),
  );
});

test('an unknown element suggests close names and says who required it', async (t) => {
  const dir = await tree({ 'a/element-deps': 'cloud-int\n' });
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.throws(
    () => resolveElements(['a'], elementSearchPath([dir])),
    (e: unknown) => isKumoError(e) && e.code === 'UNKNOWN_ELEMENT' && /unknown element 'cloud-int' \(required by 'a'\); did you mean 'cloud-init'/.test(e.message),
  );
  assert.throws(() => resolveElements(['openssh'], elementSearchPath([])), /did you mean 'openssh-server'/);
});

test('phase scripts are merged across elements and sorted by name; non-executable files are ignored', async (t) => {
  const x = { data: '#!/bin/sh\n', mode: 0o755 };
  const dir = await tree({
    'a/element-deps': 'b\n',
    'a/install.d/20-a': x,
    'a/install.d/README': 'not a script',
    'b/install.d/10-b': x,
    'b/install.d/30-b': x,
    'b/root.d/05-root': x,
    'b/environment.d/10-env': 'export X=1\n',
    'a/package-installs.yaml': 'curl:\nvim:\n  phase: post-install.d\nnano:\n  uninstall: true\n',
  });
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s = loadElementSet(['a'], [dir]);
  assert.deepEqual(s.scripts['install.d'].map((x) => `${x.element}/${x.name}`), ['b/10-b', 'a/20-a', 'b/30-b']);
  assert.deepEqual(s.scripts['root.d'].map((x) => x.name), ['05-root']);
  assert.deepEqual(s.environment.map((e) => e.name), ['10-env']);
  assert.deepEqual(
    s.packages.map((p) => [p.name, p.phase, p.uninstall]),
    [['curl', 'install.d', false], ['vim', 'post-install.d', false], ['nano', 'install.d', true]],
  );
});

test('two elements providing the same script, or a bad package-installs.yaml, are errors naming them', async (t) => {
  const x = { data: '#!/bin/sh\n', mode: 0o755 };
  const dir = await tree({ 'a/element-deps': 'b\n', 'a/install.d/10-x': x, 'b/install.d/10-x': x, 'c/package-installs.yaml': 'vim:\n  phase: bogus.d\n' });
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.throws(() => loadElementSet(['a'], [dir]), /elements 'b' and 'a' both provide install.d\/10-x/);
  assert.throws(() => loadElementSet(['c'], [dir]), /element 'c': package-installs.yaml: 'vim': phase must be one of/);
});

test('user elements shadow built-in ones of the same name', async (t) => {
  const dir = await tree({ 'vm/README': 'mine' });
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(resolveElements(['vm'], elementSearchPath([dir]))[0]!.dir, join(dir, 'vm'));
});

test('the distro element always comes first; the recipe hash follows the elements and options', () => {
  assert.deepEqual(requestedElements('debian', ['vm', 'debian']), ['debian', 'vm']);
  assert.deepEqual(requestedElements('debian', undefined).slice(0, 2), ['debian', 'vm']);
  const a = recipeHash({ elements: ['vm'] });
  assert.equal(recipeHash({ elements: ['vm'] }), a);
  assert.notEqual(recipeHash({ elements: ['vm'], size: '8G' }), a);
  assert.notEqual(recipeHash({ elements: ['vm', 'sysprep'] }), a);
});
