import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { checkMountSources, parseMountInput, rebaseMounts, resolveMounts, storedMountProblem } from '../../../src/config/mounts.js';
import { validateSpec } from '../../../src/config/spec.js';
import { ValidationError } from '../../../src/core/errors.js';

const issuesOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    return e.issues;
  }
  assert.fail('no ValidationError');
};

test('mount parsing: HOST, HOST:GUEST, :ro and :rw, relative and ~ paths; the guest path defaults to the host path', () => {
  assert.deepEqual(parseMountInput('/src', '/cwd'), { host: '/src', guest: '/src', readOnly: false });
  assert.deepEqual(parseMountInput('/src:/work', '/cwd'), { host: '/src', guest: '/work', readOnly: false });
  assert.deepEqual(parseMountInput('/src:ro', '/cwd'), { host: '/src', guest: '/src', readOnly: true });
  assert.deepEqual(parseMountInput('/src:/work/:ro', '/cwd'), { host: '/src', guest: '/work', readOnly: true });
  assert.deepEqual(parseMountInput('/src:/w:rw', '/cwd'), { host: '/src', guest: '/w', readOnly: false });
  assert.deepEqual(parseMountInput('proj', '/cwd'), { host: '/cwd/proj', guest: '/cwd/proj', readOnly: false });
  assert.deepEqual(parseMountInput('~/x:/x', '/cwd'), { host: join(homedir(), 'x'), guest: '/x', readOnly: false });
  assert.deepEqual(parseMountInput({ host: '/a', guest: '/b', ro: true, type: '9p' }, '/cwd'), { host: '/a', guest: '/b', readOnly: true, type: '9p' });
});

test('mount parsing: a guest path that is not absolute, a system folder, blanks, too many colons are refused with the reason', () => {
  assert.match(parseMountInput('/src:work', '/') as string, /'work' is not absolute/);
  assert.match(parseMountInput('/src:/etc', '/') as string, /system folder/);
  assert.match(parseMountInput('/src:/', '/') as string, /system folder/);
  assert.match(parseMountInput('/src:/proc/x', '/') as string, /system folder/);
  assert.match(parseMountInput('/my src', '/') as string, /blank.*give a GUEST_DIR/);
  assert.match(parseMountInput('/a:/b:/c', '/') as string, /too many ':'/);
  assert.match(parseMountInput('/a:', '/') as string, /empty GUEST_DIR/);
  assert.match(parseMountInput({ host: '/a', type: 'nfs' }, '/') as string, /type must be virtiofs or 9p/);
  assert.match(parseMountInput({ host: '/a', where: '/b' }, '/') as string, /unknown field/);
  assert.match(parseMountInput(3, '/') as string, /not a mount/);
});

test('spec: mounts and mountType validated with every problem at once (same guest path twice, home of the guest user, bad type)', () => {
  const issues = issuesOf(() => validateSpec({ name: 'a', mounts: ['/x:/data', '/y:/data', 'rel:nothere', '/z:/home/kumo'], mountType: 'nfs' as never }, { cwd: '/c' }));
  const text = issues.map((i) => `${i.path}: ${i.message}`).join('\n');
  assert.match(text, /mounts\[1\]: the guest path \/data is given twice/);
  assert.match(text, /mounts\[2\]: the guest path 'nothere' is not absolute/);
  assert.match(text, /mounts\[3\]: .*home of the guest user 'kumo'/);
  assert.match(text, /mountType: must be auto, virtiofs or 9p/);
  const spec = validateSpec({ name: 'a', mounts: ['/x', { host: '/y', guest: '/yy', readOnly: true }], mountType: '9p' });
  assert.deepEqual(spec.mounts, [
    { host: '/x', guest: '/x', readOnly: false },
    { host: '/y', guest: '/yy', readOnly: true },
  ]);
  assert.equal(spec.mountType, '9p');
  assert.equal(validateSpec({ name: 'a' }).mounts, undefined);
  assert.match(issuesOf(() => validateSpec({ name: 'a', mountType: 'virtiofs' }))[0]!.message, /without mounts/);
});

test('mount sources: a missing host folder and a file are refused (both at once); a symlinked folder is resolved', async () => {
  const d = await mkdtemp(join(tmpdir(), 'kumo-mounts-'));
  try {
    await mkdir(join(d, 'real'));
    await symlink(join(d, 'real'), join(d, 'link'));
    await writeFile(join(d, 'file'), 'x');
    const ok = await checkMountSources([{ host: join(d, 'link'), guest: '/l', readOnly: false }]);
    assert.equal(ok[0]!.host, realpathSync(join(d, 'real')));
    await assert.rejects(
      checkMountSources([
        { host: join(d, 'missing'), guest: '/m', readOnly: false },
        { host: join(d, 'file'), guest: '/f', readOnly: false },
      ]),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.match(e.issues[0]!.message, /does not exist/);
        assert.match(e.issues[0]!.hint!, /mkdir -p/);
        assert.match(e.issues[1]!.message, /is not a folder/);
        return true;
      },
    );
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('mount tags and stored mounts: kumo0.., the choice kept; a damaged stored mount is named', () => {
  const r = resolveMounts([{ host: '/a', guest: '/a', readOnly: false }, { host: '/b', guest: '/b', readOnly: true, type: '9p' }], (m) => m.type ?? 'virtiofs');
  assert.deepEqual(r, [
    { tag: 'kumo0', host: '/a', guest: '/a', readOnly: false, type: 'virtiofs' },
    { tag: 'kumo1', host: '/b', guest: '/b', readOnly: true, type: '9p' },
  ]);
  assert.equal(storedMountProblem(r[0]), undefined);
  assert.match(storedMountProblem({ ...r[0], tag: 'x,y' })!, /tag/);
  assert.match(storedMountProblem({ ...r[0], guest: 'rel' })!, /guest path/);
  assert.match(storedMountProblem({ ...r[0], type: 'nfs' })!, /type/);
});

test('spec file mounts: relative host folders are relative to the file', () => {
  assert.deepEqual(rebaseMounts(['src', 'src:/w:ro', '/abs', { host: 'o', guest: '/o' }, '~/h'], '/base'), ['/base/src', '/base/src:/w:ro', '/abs', { host: '/base/o', guest: '/o' }, '~/h']);
});
