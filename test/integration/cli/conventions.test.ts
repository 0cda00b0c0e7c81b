/**
 * The everyday conventions as a user meets them, through the real kumo command: config.yaml
 * defaults (and what wins over them), `list --format` and `-q`, the aliases, and the bash
 * completion script run by a real bash (the function called with COMP_WORDS/COMP_LINE set, its
 * COMPREPLY read back), answering from the live store.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo, KUMO_BIN, type CliResult } from '../../helpers/cli.js';

let dir = '';
let home = '';
let xdg = '';
let img = '';
const k = (args: string[], extra: NodeJS.ProcessEnv = {}) => kumo(args, { home, env: { KUMO_ACCEL: 'tcg', XDG_CONFIG_HOME: xdg, ...extra } });
const recordOf = async (name: string) => JSON.parse(await readFile(join(home, 'instances', name, 'instance.json'), 'utf8')) as { cpus: number; memoryMiB: number; diskBytes?: number };
const errorOf = (r: CliResult) => (JSON.parse(r.stdout.trim().split('\n').pop()!) as { error: { code: string; message: string; hint: string; details?: { issues?: { path: string }[]; fields?: string[] } } }).error;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-conv-'));
  home = join(dir, 'home');
  xdg = join(dir, 'xdg');
  img = join(dir, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '32M']);
});
after(() => rm(dir, { recursive: true, force: true }));

test('config set/get/list/unset: checked values, typed errors, the file keeps its comments', async () => {
  await mkdir(join(xdg, 'kumo'), { recursive: true });
  await writeFile(join(xdg, 'kumo', 'config.yaml'), '# my kumo defaults\nimage: ' + img + '\n');
  assert.equal((await k(['config', 'set', 'memory', '192M'])).code, 0);
  assert.equal((await k(['config', 'set', 'cpus', '3'])).code, 0);
  const file = await readFile(join(xdg, 'kumo', 'config.yaml'), 'utf8');
  assert.match(file, /^# my kumo defaults\n/);
  assert.match(file, /\nmemory: 192M\n/);
  const g = await k(['config', 'get', 'memory']);
  assert.deepEqual([g.code, g.stdout], [0, '192M\n']);
  const unset = await k(['config', 'get', 'disk']);
  assert.deepEqual([unset.code, unset.stdout], [1, '']);
  const l = JSON.parse((await k(['config', 'list', '--json'])).stdout) as { file: string; keys: { key: string; value: string; source: string }[] };
  assert.equal(l.file, join(xdg, 'kumo', 'config.yaml'));
  assert.deepEqual(l.keys.find((x) => x.key === 'cpus'), { key: 'cpus', value: '3', source: 'config', description: 'virtual CPUs of new instances' });
  assert.equal(l.keys.find((x) => x.key === 'driver')?.source, 'default');

  const unknown = await k(['config', 'set', 'colour', 'red', '--json']);
  assert.equal(unknown.code, 3);
  assert.equal(errorOf(unknown).code, 'CONFIG_UNKNOWN_KEY');
  assert.match(errorOf(unknown).hint, /known keys: image, cpus, memory, disk, driver, ssh-key, default-instance/);
  const near = await k(['config', 'get', 'memroy', '--json']);
  assert.match(errorOf(near).message, /did you mean 'memory'/);
  for (const [key, value] of [['cpus', '0'], ['memory', 'lots'], ['driver', 'qemuu'], ['ssh-key', join(dir, 'no-key')], ['default-instance', 'Bad_Name']] as const) {
    const r = await k(['config', 'set', key, value, '--json']);
    assert.equal(r.code, 3, `${key} ${value}`);
    assert.equal(errorOf(r).code, 'CONFIG_BAD_VALUE', `${key} ${value}`);
  }
  assert.match(errorOf(await k(['config', 'set', 'driver', 'qemuu', '--json'])).message, /did you mean 'qemu'/);
  // a refused value changed nothing
  assert.equal(await readFile(join(xdg, 'kumo', 'config.yaml'), 'utf8'), file);
});

test('create takes the config defaults; flags win over them, a --spec file too', async () => {
  const a = await k(['create', '--name', 'from-config']); // the image too comes from config.yaml
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual([(await recordOf('from-config')).cpus, (await recordOf('from-config')).memoryMiB], [3, 192]);
  const b = await k(['create', '--name', 'flags-win', '--cpus', '1', '--memory', '128M']);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual([(await recordOf('flags-win')).cpus, (await recordOf('flags-win')).memoryMiB], [1, 128]);
  const spec = join(dir, 'spec.yaml');
  await writeFile(spec, 'cpus: 2\n');
  const c = await k(['create', '--name', 'spec-wins', '--spec', spec]);
  assert.equal(c.code, 0, c.stderr);
  assert.deepEqual([(await recordOf('spec-wins')).cpus, (await recordOf('spec-wins')).memoryMiB], [2, 192]);
});

test('a broken config.yaml: every problem at once with its key, and nothing is made', async () => {
  const f = join(dir, 'broken.yaml');
  await writeFile(f, 'cpus: many\ncolour: red\nmemory: 1G\n');
  const r = await k(['create', '--name', 'never', '--json'], { KUMO_CONFIG: f });
  assert.equal(r.code, 3);
  const e = errorOf(r);
  assert.equal(e.code, 'CONFIG_BAD_VALUE');
  assert.deepEqual(e.details?.issues?.map((i) => i.path), ['colour', 'cpus']);
  assert.match(e.message, new RegExp(`^${f}: 2 problems`));
  assert.equal((await k(['info', 'never'])).code, 4);
  const y = join(dir, 'notyaml.yaml');
  await writeFile(y, 'cpus: [1\n');
  assert.equal(errorOf(await k(['config', 'list', '--json'], { KUMO_CONFIG: y })).code, 'CONFIG_PARSE');
});

test("list --format, -q and 'ls': the fields asked for; an unknown field lists the fields", async () => {
  const r = await k(['list', '--format', '{{.Name}}\\t{{.Status}} {{.CPUs}} {{.Memory}}']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'flags-win\tstopped 1 128\nfrom-config\tstopped 3 192\nspec-wins\tstopped 2 192\n');
  const q = await k(['ls', '-q']);
  assert.equal(q.stdout, 'flags-win\nfrom-config\nspec-wins\n');
  const j = await k(['list', '--format', '{{json .}}']);
  assert.equal((JSON.parse(j.stdout.split('\n')[0]!) as { Name: string; Driver: string }).Driver, 'qemu');
  const bad = await k(['list', '--format', '{{.Nmae}}']);
  assert.equal(bad.code, 3);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^kumo: --format: no field 'Nmae' \(did you mean 'Name'\?\)\nhint: fields: \{\{\.Name\}\} \{\{\.Status\}\} /);
  assert.match(bad.stderr, /\{\{\.SSH\}\}/);
  const open = await k(['list', '--format', '{{.Name']);
  assert.equal(open.code, 3);
  assert.match(open.stderr, /has no closing '\}\}'/);
  assert.equal((await k(['list', '--format', '{{.Name}}', '--json'])).code, 2);
  const both = await k(['list', '-q', '--format', '{{.Name}}']);
  assert.equal(both.code, 2);
  // rm is delete
  assert.equal((await k(['rm', 'spec-wins'])).code, 0);
  assert.equal((await k(['ls', '-q'])).stdout, 'flags-win\nfrom-config\n');
});

test('bash completion: the real script in bash completes commands, own flags, choices, instances and images', async () => {
  // `kumo` on PATH, as the script calls it
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'kumo'), `#!/bin/sh\nexec ${process.execPath} ${KUMO_BIN} "$@"\n`);
  await chmod(join(bin, 'kumo'), 0o755);
  // an image in the store, under a name
  assert.equal((await k(['image', 'import', img, '--name', 'my-golden'])).code, 0);
  const script = (await k(['completion', 'bash'])).stdout;
  await writeFile(join(dir, 'kumo.bash'), script);
  const complete = (line: string): string[] => {
    const prog = [
      `source ${join(dir, 'kumo.bash')}`,
      // what readline sets in an interactive bash (bash -c has none)
      "COMP_WORDBREAKS=$' \\t\\n\"\\'><=;|&(:'",
      `COMP_LINE=${JSON.stringify(line)}; COMP_POINT=\${#COMP_LINE}`,
      'read -r -a COMP_WORDS <<< "$COMP_LINE"; [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")',
      'COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))',
      '_kumo',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', prog], { encoding: 'utf8', cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, KUMO_HOME: home, XDG_CONFIG_HOME: xdg } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  assert.deepEqual(complete('kumo sta'), ['start']);
  assert.deepEqual(complete('kumo ss'), ['ssh', 'ssh-config']);
  // each command's own flags, not every command's
  const stopFlags = complete('kumo stop --');
  assert.ok(stopFlags.includes('--force') && stopFlags.includes('--timeout') && stopFlags.includes('--json'));
  assert.ok(!stopFlags.includes('--cpus') && !stopFlags.includes('--label'), stopFlags.join(' '));
  const setFlags = complete('kumo set web --');
  assert.ok(setFlags.includes('--disk') && !setFlags.includes('--force'), setFlags.join(' '));
  assert.deepEqual(complete('kumo launch --accel '), ['auto', 'kvm', 'tcg']);
  assert.deepEqual(complete('kumo launch --firmware u'), ['uefi']);
  // live instance names, wherever an instance is expected (aliases too)
  assert.deepEqual(complete('kumo stop '), ['flags-win', 'from-config']);
  assert.deepEqual(complete('kumo rm fr'), ['from-config']);
  assert.deepEqual(complete('kumo snapshot create '), ['flags-win', 'from-config']);
  // image names from the store and the catalog, and files (an image may be a file)
  const images = complete('kumo launch ');
  assert.ok(images.includes('my-golden') && images.includes('debian-12') && images.includes('base.qcow2'), images.join(' '));
  // ':' in a name: bash splits words there, the script gives the part after it
  assert.deepEqual(complete('kumo launch ubuntu:24'), ['24.04']); // replaces the word after the ':'
  assert.deepEqual(complete('kumo image '), ['pull', 'list', 'info', 'rm', 'prune', 'import', 'sync', 'build', 'warm']);
  assert.deepEqual(complete('kumo config '), ['get', 'set', 'unset', 'list', 'path']);
  // a new instance appears at the next TAB: from the store, not a list made when the script was
  assert.equal((await k(['create', img, '--name', 'fresh'])).code, 0);
  assert.deepEqual(complete('kumo start fr'), ['fresh', 'from-config']);
  // the hidden command itself prints candidates and a directive line
  const raw = await k(['__complete', 'ssh', 'fl']);
  assert.equal(raw.stdout, 'flags-win\n:\n');
});
