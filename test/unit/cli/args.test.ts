import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, closest, type CommandDef } from '../../../src/cli/command.js';
import { UsageError } from '../../../src/core/errors.js';

const def: CommandDef = {
  name: 'launch',
  summary: 's',
  usage: 'launch [IMAGE]',
  args: [{ name: 'image' }],
  acceptsRest: false,
  options: {
    name: { type: 'string', short: 'n', description: 'name' },
    port: { type: 'string', multiple: true, description: 'port' },
    wait: { type: 'boolean', description: 'wait' },
    accel: { type: 'string', choices: ['auto', 'kvm', 'tcg'], description: 'accel' },
  },
};

test('parses long, short, inline, repeated and negated options', () => {
  const a = parseArgs(def, ['debian-12', '--name=web', '--port', '8080:80', '--port', '2222:22', '--no-wait', '--json'], 'launch');
  assert.equal(a.positionals.image, 'debian-12');
  assert.equal(a.options.name, 'web');
  assert.deepEqual(a.options.port, ['8080:80', '2222:22']);
  assert.equal(a.options.wait, false);
  assert.equal(a.options.json, true);
  const b = parseArgs(def, ['-nweb'], 'launch');
  assert.equal(b.options.name, 'web');
});

test('unknown option names itself and suggests the close one', () => {
  assert.throws(() => parseArgs(def, ['--nmae', 'x'], 'launch'), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /unknown option --nmae for 'kumo launch' \(did you mean --name\?\)/);
    assert.match(e.hint ?? '', /kumo help launch/);
    return true;
  });
});

test('missing value, bad choice and extra positional are usage errors', () => {
  assert.throws(() => parseArgs(def, ['--name'], 'launch'), /option --name needs a value/);
  assert.throws(() => parseArgs(def, ['--accel', 'xen'], 'launch'), /must be one of auto, kvm, tcg \(got 'xen'\)/);
  assert.throws(() => parseArgs(def, ['a', 'b'], 'launch'), /unexpected argument 'b'/);
});

test('rest after -- is kept only for commands that accept it', () => {
  const execDef: CommandDef = { ...def, name: 'exec', args: [{ name: 'name', required: true }], acceptsRest: true };
  const a = parseArgs(execDef, ['vm1', '--', 'ls', '-la', '--name'], 'exec');
  assert.deepEqual(a.rest, ['ls', '-la', '--name']);
  assert.throws(() => parseArgs(execDef, [], 'exec'), /needs NAME/);
});

test('closest suggests by edit distance and prefix', () => {
  assert.deepEqual(closest('lanch', ['launch', 'list', 'logs']).slice(0, 1), ['launch']);
  assert.deepEqual(closest('zzzzzz', ['launch']), []);
});
