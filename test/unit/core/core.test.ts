import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveHome } from '../../../src/config/paths.js';
import { writeFileAtomic } from '../../../src/core/fs.js';
import { ValidationError, NotFoundError, CommandFailedError, ToolMissingError } from '../../../src/core/errors.js';
import { exitCodeFor, formatError } from '../../../src/cli/exit.js';
import { run } from '../../../src/core/exec.js';

test('KUMO_HOME: --home wins, then KUMO_HOME, then XDG_DATA_HOME, then ~/.local/share', () => {
  assert.equal(resolveHome({ home: '/a', env: { KUMO_HOME: '/b' } }), '/a');
  assert.equal(resolveHome({ env: { KUMO_HOME: '/b', XDG_DATA_HOME: '/x' } }), '/b');
  assert.equal(resolveHome({ env: { XDG_DATA_HOME: '/x', HOME: '/h' } }), '/x/kumo');
  assert.equal(resolveHome({ env: { HOME: '/h' } }), '/h/.local/share/kumo');
  assert.equal(resolveHome({ env: { XDG_DATA_HOME: 'relative', HOME: '/h' } }), '/h/.local/share/kumo');
});

test('writeFileAtomic replaces content whole and leaves no temp files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-fs-'));
  try {
    const f = join(dir, 'state.json');
    await writeFileAtomic(f, 'one', 0o600);
    await writeFileAtomic(f, 'two', 0o600);
    assert.equal(await readFile(f, 'utf8'), 'two');
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['state.json']);
    await assert.rejects(writeFileAtomic(join(dir, 'missing', 'x'), 'y'), (e: NotFoundError) => e.code === 'FILE_NOT_FOUND');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('validation errors list every issue with its path and hint', () => {
  const e = new ValidationError('instance spec', [
    { path: 'memory', message: 'must be at least 128 MiB', hint: 'use --memory 1G' },
    { path: 'ports[1].host', message: 'port 99999 is out of range' },
  ]);
  assert.match(e.message, /instance spec: 2 problems/);
  assert.match(e.message, /memory: must be at least 128 MiB \(use --memory 1G\)/);
  assert.match(e.message, /ports\[1\]\.host: port 99999 is out of range/);
  assert.equal(exitCodeFor(e), 3);
});

test('exit codes come from the error kind; internal errors say so', () => {
  assert.equal(exitCodeFor(new NotFoundError('X', 'no')), 4);
  assert.equal(exitCodeFor(new Error('boom')), 70);
  assert.match(formatError(new Error('boom'), false), /internal error: boom\nhint: this is a bug/);
});

test('run(): argv without a shell, failures carry the stderr tail, missing tools name the package', async () => {
  const r = await run('printf', ['%s', 'a b; $(echo no)']);
  assert.equal(r.stdout, 'a b; $(echo no)');
  await assert.rejects(run('sh', ['-c', 'echo bad thing >&2; exit 3']), (e: CommandFailedError) => {
    assert.equal(e.exitCode, 3);
    assert.match(e.message, /sh exited with status 3:\nbad thing/);
    return true;
  });
  await assert.rejects(run('qemu-img-does-not-exist', []), (e: ToolMissingError) => e.code === 'TOOL_MISSING');
  await assert.rejects(run('sleep', ['5'], { timeoutMs: 100 }), (e: { code: string }) => e.code === 'COMMAND_TIMEOUT');
});
