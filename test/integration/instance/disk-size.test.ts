/**
 * `--disk` without a boot: a size smaller than the image is refused with a typed error naming
 * both sizes (nothing is made); a bigger one gives an overlay of exactly that virtual size, read
 * back with qemu-img.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo } from '../../helpers/cli.js';

let dir = '';
let home = '';
let img = '';
const MiB = 1024 * 1024;
const k = (args: string[]) => kumo(args, { home, env: { KUMO_ACCEL: 'tcg' } });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-disksize-'));
  home = join(dir, 'home');
  img = join(dir, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '64M']);
});
after(() => rm(dir, { recursive: true, force: true }));

test('--disk smaller than the image: INVALID naming both sizes, nothing made; a bigger one is the overlay\'s virtual size', async () => {
  const r = await k(['create', img, '--name', 'small', '--disk', '32M', '--json']);
  assert.equal(r.code, 3, r.stderr);
  const e = JSON.parse(r.stdout.trim().split('\n').pop()!).error as { code: string; details: { issues: { path: string; message: string; hint: string }[] } };
  assert.equal(e.code, 'INVALID');
  assert.deepEqual(e.details.issues, [
    { path: 'disk', message: `${32 * MiB} bytes is smaller than the image (${64 * MiB} bytes)`, hint: 'give at least the image size, or leave --disk out' },
  ]);
  assert.deepEqual(existsSync(join(home, 'instances')) ? readdirSync(join(home, 'instances')) : [], []);

  const ok = await k(['create', img, '--name', 'big', '--disk', '96M']);
  assert.equal(ok.code, 0, ok.stderr);
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', join(home, 'instances', 'big', 'disk.qcow2')], { encoding: 'utf8' })) as { 'virtual-size': number };
  assert.equal(info['virtual-size'], 96 * MiB);
  const same = await k(['create', img, '--name', 'same', '--disk', '64M']);
  assert.equal(same.code, 0, same.stderr);
});
