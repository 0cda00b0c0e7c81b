import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { kumo, REPO } from '../../helpers/cli.js';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };

test('kumo --version prints the package version', async () => {
  const r = await kumo(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `kumo ${pkg.version}\n`);
});

test('kumo --help lists commands and examples; help COMMAND shows options and examples', async () => {
  const r = await kumo(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: kumo/);
  assert.match(r.stdout, /doctor\s+check what kumo needs/);
  assert.match(r.stdout, /Examples:/);
  const h = await kumo(['help', 'doctor']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Usage: kumo doctor/);
  assert.match(h.stdout, /--json/);
  assert.match(h.stdout, /Examples:\n {2}kumo doctor/);
});

test('an unknown command is a one-line error with a hint, exit 2, no stack', async () => {
  const r = await kumo(['lanch']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0]!, /^kumo: unknown command 'lanch'/);
  assert.match(lines[1]!, /^hint: /);
  assert.equal(lines.length, 2);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('an unknown flag names the flag and the command, suggests a fix', async () => {
  const r = await kumo(['doctor', '--jsn']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option --jsn for 'kumo doctor' \(did you mean --json\?\)/);
  assert.match(r.stderr, /hint: see 'kumo help doctor'/);
  const g = await kumo(['--frobnicate', 'doctor']);
  assert.equal(g.code, 2);
  assert.match(g.stderr, /unknown option --frobnicate/);
});

test('a missing argument says which one', async () => {
  const r = await kumo(['completion']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /'kumo completion' needs SHELL/);
});

test('an unwritable KUMO_HOME is a clear error (and --debug adds the stack)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-cli-'));
  try {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const home = join(file, 'kumo'); // a path below a regular file can never be created, even by root
    const r = await kumo(['doctor', '--json', '--home', home]);
    assert.equal(r.code, 6);
    const report = JSON.parse(r.stdout) as { checks: { id: string; status: string; found: string; hint?: string }[] };
    const h = report.checks.find((c) => c.id === 'home')!;
    assert.equal(h.status, 'error');
    assert.match(h.found, /is not writable/);
    assert.match(h.hint!, /--home DIR or KUMO_HOME/);
    const c = await kumo(['completion', 'tcsh', '--debug']);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /\[USAGE\]/);
    assert.match(c.stderr, /\n\s+at /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('doctor --json reports every check with status and a hint where not ok', async () => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-cli-'));
  try {
    const r = await kumo(['doctor', '--json'], { home });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ready: boolean; home: string; checks: { id: string; status: string; hint?: string }[] };
    assert.equal(report.home, home);
    for (const id of ['qemu', 'qemu-img', 'kvm', 'ssh', 'home', 'debootstrap'])
      assert.ok(report.checks.some((c) => c.id === id), `check ${id} present`);
    for (const c of report.checks) if (c.status !== 'ok') assert.ok(c.hint, `${c.id} has a hint`);
    assert.equal(report.checks.find((c) => c.id === 'qemu')!.status, 'ok');
    // KUMO_HOME is created with mode 0700
    assert.equal((await stat(home)).mode & 0o777, 0o700);
    assert.equal((await stat(join(home, 'instances'))).mode & 0o777, 0o700);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('piped output is plain text without colour escapes; NO_COLOR is respected', async () => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-cli-'));
  try {
    const r = await kumo(['doctor'], { home, env: { NO_COLOR: '1' } });
    assert.doesNotMatch(r.stdout, /\x1b\[/);
    assert.match(r.stdout, /^CHECK\tSTATUS\tFOUND$/m);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('completion scripts are valid for bash', async () => {
  const r = await kumo(['completion', 'bash']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /complete -o default -F _kumo kumo/);
  const { spawnSync } = await import('node:child_process');
  const check = spawnSync('bash', ['-n'], { input: r.stdout });
  assert.equal(check.status, 0, check.stderr?.toString());
  const f = await kumo(['completion', 'fish']);
  assert.match(f.stdout, /complete -c kumo/);
  const z = await kumo(['completion', 'zsh']);
  assert.match(z.stdout, /^#compdef kumo/);
});

test('global options are accepted before, between and after the command words', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-cli-'));
  try {
    for (const [i, args] of [
      ['image', '--home', 'HOME', 'list', '--json'],
      ['--home', 'HOME', 'image', '--json', 'list'],
      ['image', 'list', '--home=HOME', '--json'],
      ['port', '--home', 'HOME', 'list', 'ghost'],
    ].entries()) {
      const home = join(dir, `h${i}`);
      const r = await kumo(args.map((a) => a.replace('HOME', home)), { env: { KUMO_HOME: join(dir, 'not-this-one') } });
      if (args[0] === 'port') {
        // parsed fine: the error is about the instance, found in the --home given between the words
        assert.equal(r.code, 4, r.stderr);
        assert.match(r.stderr, /no instance named 'ghost'/);
      } else {
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(JSON.parse(r.stdout), []);
      }
      assert.equal((await stat(join(home, 'instances'))).isDirectory(), true, `${args.join(' ')} used --home`);
    }
    const bad = await kumo(['image', '--home'], { env: { KUMO_HOME: join(dir, 'x') } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /option --home needs a value/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('exec and ssh: everything after the instance name is the command (-- stays accepted)', async () => {
  const home = await mkdtemp(join(tmpdir(), 'kumo-cli-'));
  try {
    for (const args of [
      ['exec', 'web', 'uname', '-a'],
      ['exec', 'web', '--', 'uname', '-a'],
      ['exec', 'web', 'ls', '--json', '-la'],
      ['ssh', 'web', 'uname', '-a'],
    ]) {
      const r = await kumo(args, { home });
      assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /no instance named 'web'/);
      assert.doesNotMatch(r.stderr, /unknown option/);
    }
    const none = await kumo(['exec', 'web'], { home });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /'kumo exec' needs a command/);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test('usage lines come from the option tables (launch shows --spec, --firmware, --seed-format, --user)', async () => {
  const r = await kumo(['help', 'launch']);
  assert.equal(r.code, 0);
  const usage = r.stdout.slice(0, r.stdout.indexOf('\n\n'));
  for (const w of ['--spec FILE', '--firmware bios|uefi', '--seed-format nocloud|configdrive|cernvm', '--user USER', '--keep-on-failure', '--no-wait', '--timeout SEC'])
    assert.ok(usage.includes(w), `${w} in:\n${usage}`);
  const e = await kumo(['exec', '--help']);
  assert.match(e.stdout, /^Usage: kumo exec NAME \[--\] CMD \[ARGS\.\.\.\]$/m);
  const imp = await kumo(['image', 'import', 'x.qcow2']);
  assert.equal(imp.code, 2);
  assert.match(imp.stderr, /hint: usage: kumo image import FILE --name NAME \[--move\]/);
});
