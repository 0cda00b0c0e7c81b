import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { kumo } from '../../helpers/cli.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1hZGUgdXAga2V5IGZvciB0ZXN0cyBvbmx5IQ== me@host';

test('kumo seed create: a NoCloud seed with the merged user-data, readable by isoinfo', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-seedcli-'));
  try {
    await writeFile(join(dir, 'id.pub'), KEY + '\n');
    await writeFile(join(dir, 'ud.yaml'), '#cloud-config\npackages: [git]\n');
    await writeFile(join(dir, 'md.yaml'), 'instance-id: i-fixed\nfoo: bar\n');
    await writeFile(join(dir, 'net.yaml'), 'version: 2\nethernets:\n  eth0: {dhcp4: true}\n');
    const out = join(dir, 'seed.iso');
    const r = await kumo(['seed', 'create', '--output', out, '--user-data', join(dir, 'ud.yaml'), '--meta-data', join(dir, 'md.yaml'), '--network-config', join(dir, 'net.yaml'), '--hostname', 'web', '--ssh-key', join(dir, 'id.pub'), '--json'], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.instanceId, 'i-fixed');
    assert.equal(j.label, 'cidata');
    const ud = execFileSync('isoinfo', ['-R', '-i', out, '-x', '/user-data'], { encoding: 'utf8' });
    assert.match(ud, /^#cloud-config\n/);
    assert.match(ud, /packages:\n  - git/);
    assert.ok(ud.includes(KEY));
    const md = execFileSync('isoinfo', ['-R', '-i', out, '-x', '/meta-data'], { encoding: 'utf8' });
    assert.match(md, /foo: bar/);
    assert.match(md, /local-hostname: web/);
    assert.match(execFileSync('isoinfo', ['-R', '-i', out, '-x', '/network-config'], { encoding: 'utf8' }), /eth0/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('kumo seed create: bad input is a typed error naming the file, and writes nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-seedcli-'));
  try {
    const out = join(dir, 'seed.iso');
    let r = await kumo(['seed', 'create', '--output', out, '--user-data', join(dir, 'missing.yaml')], { home: dir });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /missing\.yaml: no such file/);
    await writeFile(join(dir, 'bad.yaml'), '#cloud-config\nruncmd:\n  - [a, b\n');
    r = await kumo(['seed', 'create', '--output', out, '--user-data', join(dir, 'bad.yaml')], { home: dir });
    assert.equal(r.code, 3, r.stderr); // invalid input
    assert.match(r.stderr, /bad\.yaml.*line \d+, column \d+/);
    r = await kumo(['seed', 'create', '--output', out, '--hostname', 'bad_host!'], { home: dir });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /hostname/);
    r = await kumo(['seed', 'create'], { home: dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--output/);
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.iso') || f.includes('.tmp-')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
