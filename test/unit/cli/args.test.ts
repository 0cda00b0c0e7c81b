import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, closest, usageLine, type CommandDef } from '../../../src/cli/command.js';
import { loadAllCommands } from '../../../src/cli/registry.js';
import { INSTANCE_OPTIONS } from '../../../src/cli/flags.js';
import { UsageError } from '../../../src/core/errors.js';

const def: CommandDef = {
  name: 'launch',
  summary: 's',
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

test('with a rest, everything after the last argument is the command, options included; -- stays accepted', () => {
  const execDef: CommandDef = { name: 'exec', summary: 's', args: [{ name: 'name', required: true }], acceptsRest: { placeholder: 'CMD [ARGS...]', required: true } };
  const a = parseArgs(execDef, ['web', 'uname', '-a'], 'exec');
  assert.equal(a.positionals.name, 'web');
  assert.deepEqual(a.rest, ['uname', '-a']);
  const b = parseArgs(execDef, ['--json', 'web', 'ls', '--json', '--', '-la'], 'exec');
  assert.equal(b.options.json, true);
  assert.deepEqual(b.rest, ['ls', '--json', '--', '-la']);
  assert.deepEqual(parseArgs(execDef, ['web', '--', 'uname', '-a'], 'exec').rest, ['uname', '-a']);
  assert.deepEqual(parseArgs(execDef, ['web'], 'exec').rest, []);
});

test('a required option is checked; a boolean default fills in when the flag is absent', () => {
  const d: CommandDef = {
    name: 'import',
    summary: 's',
    args: [{ name: 'file', required: true }],
    options: { name: { type: 'string', required: true, placeholder: 'NAME', description: 'n' }, wait: { type: 'boolean', default: true, description: 'w' } },
  };
  assert.throws(() => parseArgs(d, ['f'], 'image import'), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /'kumo image import' needs --name NAME/);
    assert.match(e.hint ?? '', /usage: kumo image import FILE --name NAME \[--no-wait\]/);
    return true;
  });
  assert.equal(parseArgs(d, ['f', '--name', 'x'], 'image import').options.wait, true);
  assert.equal(parseArgs(d, ['f', '--name', 'x', '--no-wait'], 'image import').options.wait, false);
  // --help needs neither
  assert.equal(parseArgs(d, ['--help'], 'image import').options.help, true);
});

test('usage lines are generated from the tables', () => {
  assert.equal(
    usageLine({ ...def, options: { ...def.options!, wait: { type: 'boolean', default: true, description: 'w' } } }, 'launch'),
    'launch [IMAGE] [--name VALUE] [--port VALUE]... [--no-wait] [--accel auto|kvm|tcg]',
  );
  const execDef: CommandDef = { name: 'exec', summary: 's', args: [{ name: 'name', required: true }], acceptsRest: { placeholder: 'CMD [ARGS...]', required: true }, options: { x: { type: 'boolean', description: 'x' } } };
  assert.equal(usageLine(execDef, 'exec'), 'exec [--x] NAME [--] CMD [ARGS...]');
  assert.equal(usageLine({ ...execDef, acceptsRest: { placeholder: 'CMD...' } }, 'ssh'), 'ssh [--x] NAME [[--] CMD...]');
  assert.equal(usageLine({ name: 'rm', summary: 's', args: [{ name: 'refs', placeholder: 'REF', required: true, variadic: true }] }, 'image rm'), 'image rm REF...');
  assert.equal(usageLine({ name: 'image', summary: 's', subcommands: [{ name: 'list', summary: 'l' }] }, 'image'), 'image COMMAND [ARGS...]');
});

test('every command shows every option of its table in its usage (launch: --spec, --firmware, --seed-format, --user)', async () => {
  const defs = await loadAllCommands();
  assert.ok(defs.length > 20);
  const walk = (d: CommandDef, path: string): void => {
    const u = usageLine(d, path);
    assert.ok(u.startsWith(`${path}`), u);
    for (const [n, o] of Object.entries(d.options ?? {})) assert.ok(u.includes(o.default === true ? `--no-${n}` : `--${n}`), `${path}: --${n} in '${u}'`);
    for (const s of d.subcommands ?? []) walk(s, `${path} ${s.name}`);
  };
  for (const d of defs) walk(d, d.name);
  const launch = defs.find((d) => d.name === 'launch')!;
  const u = usageLine(launch, 'launch');
  for (const w of ['[--spec FILE]', '[--firmware bios|uefi]', '[--seed-format nocloud|configdrive|cernvm]', '[--user USER]', '[--keep-on-failure]', '[--no-wait]', '[--port [ADDR:]HOST:GUEST[/udp]]...'])
    assert.ok(u.includes(w), `${w} in ${u}`);
  const create = defs.find((d) => d.name === 'create')!;
  for (const n of Object.keys(INSTANCE_OPTIONS)) assert.ok(create.options?.[n] && launch.options?.[n], `--${n} on create and launch`);
});
