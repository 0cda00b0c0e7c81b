import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { IDENTITY_SCRIPT, newMachineId } from '../../../src/guest/identity.js';
import { vmgenidFor } from '../../../src/driver/shared/mac.js';
import { shellQuote } from '../../../src/core/text.js';

test('vmgenid: a UUID (version 4, variant 1), stable per instance id, different between instances', () => {
  const a = vmgenidFor('i-web-1');
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(vmgenidFor('i-web-1'), a);
  assert.notEqual(vmgenidFor('i-web-2'), a);
});

test('machine-id: 32 lowercase hex digits, new each time', () => {
  const a = newMachineId();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(newMachineId(), a);
});

test('shellQuote: a path with quotes and spaces survives sh -c (the exec: URIs of saved states)', () => {
  const p = `/tmp/a b/it's "x"; $(echo no)`;
  const r = spawnSync('sh', ['-c', `printf %s ${shellQuote([p])}`], { encoding: 'utf8' });
  assert.equal(r.stdout, p);
});

test('the identity script is valid POSIX sh (sh -n) and names every step', () => {
  const r = spawnSync('sh', ['-n', '-c', IDENTITY_SCRIPT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const step of ['date -u -s', '/etc/hostname', '/proc/sys/kernel/hostname', '/etc/machine-id', 'ssh_host_', '/dev/urandom', 'leases', 'systemd-journald', 'identity-ok']) assert.ok(IDENTITY_SCRIPT.includes(step), step);
});

test('the /etc/hosts rewrite replaces the old hostname as a word, not inside other names', async () => {
  // the script's sed expression, run on its own on a sample file
  const dir = await mkdtemp(join(tmpdir(), 'kumo-ident-'));
  try {
    const sedLine = IDENTITY_SCRIPT.split('\n').find((l) => l.includes('sed -i'))!.trim();
    await mkdir(dir, { recursive: true });
    const hosts = join(dir, 'hosts');
    await writeFile(hosts, '127.0.0.1 localhost\n127.0.1.1 tpl-ab.localdomain tpl-ab\n127.0.1.1 tpl-ab tpl-ab tpl-ab\n10.0.0.1 tpl-abc\n');
    const cmd = sedLine.replace('/etc/hosts', hosts);
    const r = spawnSync('sh', ['-c', `old=tpl-ab hn=web; ${cmd}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await readFile(hosts, 'utf8'), '127.0.0.1 localhost\n127.0.1.1 web.localdomain web\n127.0.1.1 web web web\n10.0.0.1 tpl-abc\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the RNG reseed: the script confirms how it reseeded; its perl and python3 calls are the real RNDRESEEDCRNG ioctl', (t) => {
  assert.match(IDENTITY_SCRIPT, /echo "identity-ok \$now_hn rng=\$rng"/);
  assert.match(IDENTITY_SCRIPT, /QEMUVGID:00\/driver/, 'a bound vmgenid driver reseeds by itself');
  const lines = IDENTITY_SCRIPT.split('\n');
  const perl = /(perl -e '[^']*')/.exec(lines.find((l) => l.includes('perl -e'))!)![1]!;
  // the host's own python3 (setup installs python3-minimal), not whatever python3 is first on PATH
  const py = `/usr/bin/${/(python3 -c '[^']*')/.exec(lines.find((l) => l.includes('python3 -c'))!)![1]!}`;
  if (process.getuid?.() !== 0) {
    t.skip('RNDRESEEDCRNG needs CAP_SYS_ADMIN: run as root to try the calls on this host kernel');
    return;
  }
  // On this host's kernel (root): a wrong ioctl number would fail with ENOTTY or EINVAL.
  for (const cmd of [perl, py]) {
    const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
  }
  // and unprivileged it is refused (EPERM), so the script cannot claim a reseed that did not happen
  const nobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', perl], { encoding: 'utf8' });
  assert.notEqual(nobody.status, 0, 'an unprivileged reseed fails');
  assert.match(nobody.stderr, /RNDRESEEDCRNG: Operation not permitted/);
});
