/**
 * qemu:///session: an unprivileged user's own libvirt daemon (libvirt starts it on first use,
 * `libvirtd --timeout=120`), driven through the CLI as user `nobody` with a private HOME and
 * XDG_RUNTIME_DIR. QEMU runs as that user, so the disks stay files in kumo's home (no pool), with
 * user networking and its ssh forward. The guest has no OS (a blank base): what is checked is
 * what libvirt and the host see. The session daemon is stopped at the end (found by its HOME).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KUMO_BIN } from '../../helpers/cli.js';
import { listening } from '../../helpers/net.js';

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'runs kumo as user nobody: needs root';
  for (const p of ['/usr/sbin/libvirtd', '/usr/bin/virsh', '/usr/sbin/runuser']) if (!existsSync(p)) return `${p} is missing`;
  return undefined;
}

describe('qemu:///session as an unprivileged user', { skip: unavailable() }, () => {
  let root = '';
  let env: string[] = [];
  const uid = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim());

  /** kumo as nobody with the test's HOME. */
  const kumo = (...args: string[]) => spawnSync('runuser', ['-u', 'nobody', '--', 'env', ...env, process.execPath, KUMO_BIN, ...args], { encoding: 'utf8', cwd: '/', timeout: 120_000 });

  /** The processes of nobody whose environment has this test's HOME (its session daemon, its QEMU). */
  async function ours(): Promise<number[]> {
    const out: number[] = [];
    for (const e of await readdir('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const st = await readFile(`/proc/${e}/status`, 'utf8');
        if (Number(/^Uid:\s+(\d+)/m.exec(st)?.[1]) !== uid) continue;
        if ((await readFile(`/proc/${e}/environ`, 'latin1')).split('\0').includes(`HOME=${root}`)) out.push(Number(e));
      } catch {
        /* gone */
      }
    }
    return out;
  }

  before(async () => {
    root = await mkdtemp('/tmp/kumo-lv-session-');
    await chmod(root, 0o755);
    await mkdir(join(root, 'run'), { mode: 0o700 });
    for (const d of [root, join(root, 'run')]) await chown(d, uid, uid);
    env = [`HOME=${root}`, `XDG_RUNTIME_DIR=${join(root, 'run')}`, `KUMO_HOME=${join(root, 'kumo')}`, 'LIBVIRT_DEFAULT_URI=qemu:///session'];
    const q = spawnSync('runuser', ['-u', 'nobody', '--', 'qemu-img', 'create', '-q', '-f', 'qcow2', join(root, 'base.qcow2'), '64M'], { encoding: 'utf8' });
    assert.equal(q.status, 0, q.stderr);
  });

  after(async () => {
    if (!root) return;
    kumo('delete', '--force', 's');
    for (const pid of await ours()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    for (let i = 0; i < 50 && (await ours()).length; i++) await new Promise((r) => setTimeout(r, 100));
    await rm(root, { recursive: true, force: true });
  });

  test('create, start, list, delete: QEMU runs as the user on files in its kumo home, ssh forwarded', async () => {
    const c = kumo('create', join(root, 'base.qcow2'), '--name', 's', '--driver', 'libvirt', '--memory', '128M', '--cpus', '1');
    assert.equal(c.status, 0, c.stderr);
    const rec = JSON.parse(await readFile(join(root, 'kumo', 'instances', 's', 'instance.json'), 'utf8')) as { driverOptions?: { connect?: string; pool?: string } };
    assert.equal(rec.driverOptions?.connect, 'qemu:///session');
    assert.equal(rec.driverOptions?.pool, undefined, 'QEMU runs as the user: no pool needed');
    const s = kumo('start', 's', '--no-wait');
    assert.equal(s.status, 0, s.stderr);
    const port = Number(/ssh on 127\.0\.0\.1:(\d+)/.exec(s.stdout + s.stderr)?.[1]);
    assert.ok(port > 0, s.stdout + s.stderr);
    const ps = spawnSync('ps', ['-eo', 'uid=,args='], { encoding: 'utf8' }).stdout.split('\n').find((l) => l.includes('-name guest=s,'));
    assert.ok(ps, 'a QEMU for domain s');
    assert.equal(Number(ps.trim().split(/\s+/)[0]), uid, 'QEMU runs as nobody');
    assert.ok(await listening(port), `user networking: the ssh forward listens on 127.0.0.1:${port}`);
    assert.match(ps, new RegExp(join(root, 'kumo', 'instances', 's').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), 'its disks are files in the kumo home');
    const l = kumo('list');
    assert.match(l.stdout, /^s\s+running\s+libvirt qemu:\/\/\/session/m);
    const d = kumo('delete', '--force', 's');
    assert.equal(await listening(port), false, 'the forward is gone with the machine');
    assert.equal(d.status, 0, d.stderr);
    assert.equal(existsSync(join(root, 'kumo', 'instances', 's')), false);
    assert.equal(spawnSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).stdout.includes('-name guest=s,'), false, 'no QEMU left');
  });
});
