import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { kumo, KUMO_BIN } from '../../helpers/cli.js';
import { sha256, sumsFile } from '../../helpers/http-server.js';
import { setup, makeQcow2, listTree, debianCatalog } from './fixture.js';

const DEB = '/debian/bookworm/latest/debian-12-genericcloud-amd64.qcow2';
const env = { KUMO_RETRY_BACKOFF_MS: '20' };

test('kumo image pull / list / info / rm / prune: output, --json and exit codes', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'cli', 8);
    f.server.put(DEB, img);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    const home = f.paths.home;
    const p = await kumo(['image', 'pull', 'debian-12', '--arch', 'x86_64', '--json'], { home, env });
    assert.equal(p.code, 0, p.stderr);
    const rec = JSON.parse(p.stdout);
    assert.equal(rec.id, sha256(img));
    const l = await kumo(['image', 'list', '--json'], { home, env });
    assert.deepEqual(JSON.parse(l.stdout).map((r: { aliases: string[] }) => r.aliases), [['debian-12']]);
    const plain = await kumo(['image', 'list'], { home, env });
    assert.match(plain.stdout, /^NAME\tID\t/);
    assert.match(plain.stdout, /debian-12\t[0-9a-f]{12}\tx86_64\tqcow2\t8\.0 MiB/);
    const i = await kumo(['image', 'info', 'bookworm'], { home, env });
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /digest:\s+sha256:[0-9a-f]{64}/);
    assert.match(i.stdout, /used by:\s+no instance/);
    const bad = await kumo(['image', 'pull', 'debain-12'], { home, env });
    assert.equal(bad.code, 4);
    assert.match(bad.stderr, /unknown image 'debain-12'/);
    assert.match(bad.stderr, /did you mean 'debian-12'/);
    const nf = await kumo(['image', 'rm', 'nothing'], { home, env });
    assert.equal(nf.code, 4);
    const imp = await kumo(['image', 'import', join(f.dir, 'cli.qcow2')], { home, env });
    assert.equal(imp.code, 2);
    assert.match(imp.stderr, /needs --name/);
    const cat = await kumo(['image', 'list', '--catalog', '--json'], { home, env });
    assert.ok(JSON.parse(cat.stdout).some((a: { alias: string }) => a.alias === 'ubuntu:24.04'));
    const rm = await kumo(['image', 'rm', 'debian-12'], { home, env });
    assert.equal(rm.code, 0, rm.stderr);
    const pr = await kumo(['image', 'prune', '--json'], { home, env });
    assert.deepEqual(JSON.parse(pr.stdout).removed, []);
    const cs = await kumo(['image', 'pull', `${f.server.url}/x.qcow2`, '--checksum', 'sha256:zz'], { home, env });
    assert.equal(cs.code, 3);
    assert.match(cs.stderr, /not a checksum/);
  } finally {
    await f.done();
  }
});

function pullProcess(home: string, ref: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [KUMO_BIN, 'image', 'pull', ref, '--arch', 'x86_64'], { env: { ...process.env, KUMO_HOME: home, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stderr }));
  });
}

test('two processes pulling the same image download it once: the second waits', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'two', 16, 'twoprocs');
    f.server.put(DEB, img);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    f.server.fault(DEB, { rateBytesPerSec: 512 * 1024 });
    const [a, b] = await Promise.all([pullProcess(f.paths.home, 'debian-12'), pullProcess(f.paths.home, 'bookworm')]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(f.server.requests.filter((r) => r.path === DEB).length, 1);
    assert.match(a.stderr + b.stderr, /waiting for process \d+, which is downloading debian-12/);
    assert.equal((await listTree(f.paths.images)).filter((x) => x.endsWith('.qcow2')).length, 1);
  } finally {
    await f.done();
  }
});

test('a killed download leaves a stale lock and a partial file; the next pull takes over and resumes', async () => {
  const f = await setup(debianCatalog);
  try {
    const img = await makeQcow2(f.dir, 'kill', 16, 'killed');
    f.server.put(DEB, img);
    f.server.put('/debian/bookworm/latest/SHA512SUMS', sumsFile({ 'debian-12-genericcloud-amd64.qcow2': img }, 'sha512'));
    f.server.fault(DEB, { rateBytesPerSec: 64 * 1024, times: 1 });
    const c = spawn(process.execPath, [KUMO_BIN, 'image', 'pull', 'debian-12', '--arch', 'x86_64'], { env: { ...process.env, KUMO_HOME: f.paths.home, ...env }, stdio: 'ignore' });
    const closed = new Promise((r) => c.on('close', r));
    for (let i = 0; i < 100 && !(await listTree(join(f.paths.cache, 'downloads'))).some((x) => x.endsWith('.part')); i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    c.kill('SIGKILL');
    await closed;
    assert.ok((await listTree(join(f.paths.cache, 'locks'))).length === 1, 'stale lock left');
    const r = await kumo(['image', 'pull', 'debian-12', '--arch', 'x86_64', '--json'], { home: f.paths.home, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).id, sha256(img));
    const reqs = f.server.requests.filter((q) => q.path === DEB);
    assert.equal(reqs.length, 2);
    assert.match(reqs[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
  } finally {
    await f.done();
  }
});
