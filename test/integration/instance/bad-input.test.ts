/**
 * Bad input and races through the real CLI, without booting: every refusal has a clear message
 * and exit code, and leaves nothing behind in KUMO_HOME/instances.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readdir, mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { execFileSync } from 'node:child_process';
import { kumo, KUMO_BIN } from '../../helpers/cli.js';

let home = '';
let work = '';
let img = '';

const k = (args: string[]) => kumo(args, { home, env: { KUMO_ACCEL: 'tcg' } });
const instances = async () => (existsSync(join(home, 'instances')) ? (await readdir(join(home, 'instances'))).filter((n) => !n.startsWith('.')) : []);

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'kumo-bad-'));
  work = await mkdtemp(join(tmpdir(), 'kumo-bad-work-'));
  img = join(work, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '32M']);
});

after(async () => {
  await rm(home, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

test('invalid names are refused with the rule, nothing is made', async () => {
  for (const name of ['', '..', 'a/b', '../../etc', 'x'.repeat(64), 'Web', 'a b', 'a_b', 'semi;colon', '-lead']) {
    const r = await k(['create', img, '--name', name]);
    assert.equal(r.code, 3, `${JSON.stringify(name)}: ${r.stderr}`);
    assert.match(r.stderr, /name: /);
    assert.match(r.stderr, /hint: use 1-63 lower-case letters/);
  }
  assert.deepEqual(await instances(), []);
  const ex = await k(['exec', '..', '--', 'true']);
  assert.equal(ex.code, 3);
});

test('unknown image: a clear not-found error, nothing left', async () => {
  const r = await k(['create', 'no-such-image-anywhere', '--name', 'u1']);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /unknown image 'no-such-image-anywhere'/);
  assert.deepEqual(await instances(), []);
});

test('memory and cpus out of range: every problem reported at once', async () => {
  const r = await k(['create', img, '--name', 'm1', '--memory', '99999G', '--cpus', '0']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /2 problems/);
  assert.match(r.stderr, /cpus: 0 is out of range/);
  assert.match(r.stderr, /memory: .* out of range/);
  const r2 = await k(['create', img, '--name', 'm1', '--memory', '64M']);
  assert.equal(r2.code, 3);
  assert.deepEqual(await instances(), []);
});

test('missing and invalid user-data files', async () => {
  const miss = await k(['create', img, '--name', 'ud', '--user-data', join(work, 'nope.yaml')]);
  assert.equal(miss.code, 3);
  assert.match(miss.stderr, /nope\.yaml: no such file/);
  await writeFile(join(work, 'plain.yaml'), 'packages: [curl]\n');
  const plain = await k(['create', img, '--name', 'ud', '--user-data', join(work, 'plain.yaml')]);
  assert.equal(plain.code, 3);
  assert.match(plain.stderr, /cloud-init does not recognise/);
  await writeFile(join(work, 'broken.yaml'), '#cloud-config\nruncmd: [\n');
  const broken = await k(['create', img, '--name', 'ud', '--user-data', join(work, 'broken.yaml')]);
  assert.equal(broken.code, 3);
  assert.match(broken.stderr, /not valid YAML/);
  assert.deepEqual(await instances(), []);
});

test('a host port already taken', async () => {
  const srv: Server = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const r = await k(['create', img, '--name', 'p1', '--port', `${port}:80`]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, new RegExp(`port 127\\.0\\.0\\.1:${port} is already taken`));
    const bad = await k(['create', img, '--name', 'p1', '--port', '80']);
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /ports\[0\]: '80' is not HOST:GUEST/);
    assert.deepEqual(await instances(), []);
  } finally {
    srv.close();
  }
});

test("the library's addPort takes an object only through the port parser: no QEMU options smuggled in", async () => {
  assert.equal((await k(['create', img, '--name', 'pa'])).code, 0);
  const { addPort, readRecord } = await import('../../../src/instance/index.js');
  const { pathsFor } = await import('../../../src/config/paths.js');
  const paths = pathsFor(home);
  const evil = { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 18080, guestPort: '80,guestfwd=tcp:10.0.2.100:1234-cmd:/tmp/x' } as unknown as import('../../../src/driver/driver.js').PortForward;
  await assert.rejects(addPort(paths, 'pa', evil), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'INVALID');
    assert.match(e.message, /invalid port forward/);
    return true;
  });
  assert.deepEqual((await readRecord(paths, 'pa')).ports, [], 'nothing was recorded');
  const ok = await addPort(paths, 'pa', { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 18081, guestPort: 80 });
  assert.deepEqual((await readRecord(paths, 'pa')).ports, [ok]);
  assert.equal((await k(['delete', 'pa'])).code, 0);
});

test('a spec file cannot run a host program through the libvirt URI (ext transport, command=), nor turn off verification', async () => {
  const marker = join(work, 'ext-ran');
  const script = join(work, 'evil.sh');
  await writeFile(script, `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
  for (const connect of [`qemu+ext:///system?command=${script}`, 'qemu+tls://127.0.0.1/system?no_verify=1']) {
    const spec = join(work, 'evil.yaml');
    await writeFile(spec, `name: evil\nimage: ${img}\ndriver: libvirt\nconnect: "${connect}"\n`);
    const r = await k(['create', '--spec', spec]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /connect: the libvirt URI .* kumo takes that only from the command line/);
    assert.equal(existsSync(marker), false, 'the program named in the URI never ran');
    assert.deepEqual(await instances(), []);
  }
});

test('--memory 1T: refused against the host before anything is made (QEMU would fail only at start)', async () => {
  const r = await k(['create', img, '--name', 'huge', '--memory', '1T']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /memory 1\.0 TiB is more than this host has/);
  assert.deepEqual(await instances(), []);
  const l = await k(['launch', img, '--name', 'huge', '--memory', '1T']);
  assert.equal(l.code, 3, l.stderr);
  assert.deepEqual(await instances(), []);
});

test('a missing ssh key', async () => {
  const r = await k(['create', img, '--name', 'k1', '--ssh-key', join(work, 'id_none')]);
  assert.equal(r.code, 4);
  assert.match(r.stderr, /id_none/);
  assert.deepEqual(await instances(), []);
});

test('create makes the instance folder (overlay with -F, seed, keys 0600); a second create of the name is refused', async () => {
  const r = await k(['create', img, '--name', 'c1', '--port', '127.0.0.1:40999:80']);
  assert.equal(r.code, 0, r.stderr);
  const dir = join(home, 'instances', 'c1');
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(dir, 'disk.qcow2')]).toString());
  assert.equal(info['backing-filename-format'], 'qcow2');
  const rec = JSON.parse(await readFile(join(dir, 'instance.json'), 'utf8'));
  assert.equal(info['backing-filename'], rec.image.path);
  assert.match(rec.instanceId, /^i-c1-[0-9a-f]{12}$/);
  // the seed is a cidata ISO carrying this instance-id
  const meta = execFileSync('isoinfo', ['-i', join(dir, 'seed.iso'), '-R', '-x', '/meta-data']).toString();
  assert.match(meta, new RegExp(rec.instanceId));
  const known = await readFile(join(dir, 'known_hosts'), 'utf8');
  assert.match(known, /^kumo-c1 ssh-ed25519 /);
  const { statSync } = await import('node:fs');
  assert.equal(statSync(join(home, 'keys', 'id_ed25519')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'ssh_host_ed25519_key')).mode & 0o777, 0o600);
  const again = await k(['create', img, '--name', 'c1']);
  assert.equal(again.code, 5);
  assert.match(again.stderr, /an instance named 'c1' already exists/);
  const l = JSON.parse((await k(['list', '--json'])).stdout);
  assert.deepEqual(l.map((x: { name: string; status: string }) => [x.name, x.status]), [['c1', 'stopped']]);
  assert.equal((await k(['delete', 'c1'])).code, 0);
  assert.deepEqual(await instances(), []);
});

test('creates of one name at once: exactly one wins, the others get a clear error', async () => {
  const rs = await Promise.all(Array.from({ length: 4 }, () => k(['create', img, '--name', 'race'])));
  const codes = rs.map((r) => r.code);
  assert.equal(codes.filter((c) => c === 0).length, 1, rs.map((r) => r.stderr).join('\n'));
  for (const r of rs.filter((x) => x.code !== 0)) {
    assert.equal(r.code, 5);
    assert.match(r.stderr, /'race' (already exists|is being created)/);
  }
  assert.deepEqual(await instances(), ['race']);
  assert.equal((await k(['delete', 'race'])).code, 0);
});

test('a kumo killed mid-create (folder without instance.json) is detected and removable', async () => {
  await mkdir(join(home, 'instances', 'half'), { recursive: true });
  await writeFile(join(home, 'instances', 'half', 'disk.qcow2'), '');
  const l = JSON.parse((await k(['list', '--json'])).stdout);
  assert.deepEqual(l.map((x: { name: string; status: string }) => [x.name, x.status]), [['half', 'incomplete']]);
  const st = await k(['start', 'half']);
  assert.equal(st.code, 5);
  assert.match(st.stderr, /never fully created/);
  assert.match(st.stderr, /kumo delete half/);
  const c = await k(['create', img, '--name', 'half']);
  assert.equal(c.code, 5);
  assert.equal((await k(['delete', 'half'])).code, 0);
  assert.deepEqual(await instances(), []);
});

test('a stale lock left by a dead kumo does not block commands', async () => {
  assert.equal((await k(['create', img, '--name', 's1'])).code, 0);
  await writeFile(join(home, 'instances', 's1', 'lock'), JSON.stringify({ pid: 99_999_999, op: 'start', at: 'then' }));
  const d = await k(['delete', 's1']);
  assert.equal(d.code, 0, d.stderr);
  assert.deepEqual(await instances(), []);
});

test('commands on a missing instance say so', async () => {
  for (const args of [['start', 'ghost'], ['stop', 'ghost'], ['info', 'ghost'], ['delete', 'ghost'], ['logs', 'ghost'], ['port', 'list', 'ghost'], ['exec', 'ghost', '--', 'true']]) {
    const r = await k(args);
    assert.equal(r.code, 4, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /no instance named 'ghost'/);
  }
});

test('create rolls back what it made when a step fails after the folder was claimed', async () => {
  const { createInstance } = await import('../../../src/instance/index.js');
  const { pathsFor } = await import('../../../src/config/paths.js');
  const h = await mkdtemp(join(tmpdir(), 'kumo-rollback-'));
  try {
    const paths = pathsFor(h);
    await mkdir(paths.instances, { recursive: true });
    // the scratch folder is a file: the host key step fails after the instance folder exists
    await writeFile(paths.tmp, 'not a folder');
    await assert.rejects(createInstance(paths, { name: 'rb', image: img }), (e: Error & { code?: string }) => typeof e.code === 'string');
    assert.deepEqual(await readdir(paths.instances), []);
  } finally {
    await rm(h, { recursive: true, force: true });
  }
});

test('logs: the whole console, a tail, and --follow (library and kumo logs --follow) picks up what is appended', async () => {
  assert.equal((await k(['create', img, '--name', 'lg'])).code, 0);
  const log = join(home, 'instances', 'lg', 'serial.log');
  await writeFile(log, 'line one\nline two\n');
  const all = await k(['logs', 'lg']);
  assert.equal(all.stdout, 'line one\nline two\n');
  assert.equal((await k(['logs', 'lg', '--tail', '9'])).stdout, 'line two\n');
  const { streamConsoleLog } = await import('../../../src/instance/index.js');
  const { pathsFor } = await import('../../../src/config/paths.js');
  const ac = new AbortController();
  let got = '';
  const done = streamConsoleLog(pathsFor(home), 'lg', (c) => (got += c.toString()), { follow: true, signal: ac.signal });
  await new Promise((r) => setTimeout(r, 300));
  const { appendFile } = await import('node:fs/promises');
  await appendFile(log, 'line three\n');
  for (let i = 0; i < 50 && !got.includes('three'); i++) await new Promise((r) => setTimeout(r, 50));
  ac.abort();
  await done;
  assert.equal(got, 'line one\nline two\nline three\n');

  // and the command itself: `kumo logs --follow` prints what is appended until Ctrl-C
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [KUMO_BIN, 'logs', 'lg', '--follow'], { env: { ...process.env, KUMO_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const until = async (what: string) => {
    for (let i = 0; i < 400 && !out.includes(what); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes(what), `kumo logs --follow never printed '${what}': ${out}${err}`);
  };
  await until('line three');
  await appendFile(log, 'line four \x1b[2J\n'); // a guest's terminal escape, passed on as is to a pipe
  await until('line four');
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  child.kill('SIGINT');
  assert.equal(await exited, 0, err); // Ctrl-C is how a follow ends (as journalctl -f): not an error
  assert.equal(out, 'line one\nline two\nline three\nline four \x1b[2J\n');
  assert.equal((await k(['delete', 'lg'])).code, 0);
});
