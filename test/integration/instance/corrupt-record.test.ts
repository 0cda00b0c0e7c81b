/**
 * A damaged instance.json (truncated, not JSON, wrong types, empty, not an object) through the
 * real CLI: `kumo list` still lists the other instances and marks the damaged ones with what is
 * wrong; `start` refuses with CORRUPT_STATE and a hint; `delete` removes what is left; the good
 * instance is never touched; `repair` does not delete anything of them.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo } from '../../helpers/cli.js';

let dir = '';
let home = '';
const k = (args: string[]) => kumo(args, { home, env: { KUMO_ACCEL: 'tcg' } });
const rec = (n: string) => join(home, 'instances', n, 'instance.json');

const DAMAGE: Record<string, { write: (good: string) => string; detail: RegExp }> = {
  truncated: { write: (g) => g.slice(0, 40), detail: /instance\.json is not valid JSON/ },
  garbage: { write: () => '{not json', detail: /instance\.json is not valid JSON/ },
  empty: { write: () => '', detail: /instance\.json is not valid JSON/ },
  array: { write: () => '[1, 2]', detail: /is damaged: it is not a JSON object/ },
  types: {
    write: (g) => JSON.stringify({ ...JSON.parse(g), name: 'types', cpus: 'many', ssh: null, ports: 5 }),
    detail: /is damaged: cpus is "many", not a number; ssh is missing or not an object; ports is missing or not a list/,
  },
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kumo-corrupt-'));
  home = join(dir, 'home');
  const img = join(dir, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']);
  for (const n of ['good', ...Object.keys(DAMAGE)]) {
    const r = await k(['create', img, '--name', n]);
    assert.equal(r.code, 0, r.stderr);
  }
  for (const [n, d] of Object.entries(DAMAGE)) await writeFile(rec(n), d.write(await readFile(rec(n), 'utf8')));
});
after(() => rm(dir, { recursive: true, force: true }));

test('kumo list lists every instance, the damaged ones marked corrupt with what is wrong', async () => {
  const l = await k(['list', '--json']);
  assert.equal(l.code, 0, l.stderr);
  const rows = JSON.parse(l.stdout) as { name: string; status: string; detail?: string; driver?: string }[];
  assert.deepEqual(rows.map((r) => r.name), ['array', 'empty', 'garbage', 'good', 'truncated', 'types']);
  for (const r of rows) {
    if (r.name === 'good') {
      assert.equal(r.status, 'stopped');
      assert.equal(r.driver, 'qemu');
    } else {
      assert.equal(r.status, 'corrupt', r.name);
      assert.match(r.detail ?? '', DAMAGE[r.name]!.detail, r.name);
    }
  }
  const plain = await k(['list']);
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /^good\tstopped\tqemu\t/m);
  assert.match(plain.stdout, /^types\tcorrupt\t/m);
});

test('info shows the damage; start refuses with CORRUPT_STATE and a hint; repair deletes nothing; delete removes it', async () => {
  for (const [n, d] of Object.entries(DAMAGE)) {
    const i = await k(['info', n, '--json']);
    assert.equal(i.code, 0, i.stderr);
    const info = JSON.parse(i.stdout) as { state: string; detail: string };
    assert.equal(info.state, 'corrupt');
    assert.match(info.detail, d.detail);
    const s = await k(['start', n, '--json']);
    assert.equal(s.code, 3, `${n}: ${s.stderr}`);
    const e = (JSON.parse(s.stdout.trim().split('\n').pop()!) as { error: { code: string; message: string; hint: string } }).error;
    assert.equal(e.code, 'CORRUPT_STATE');
    assert.match(e.message, new RegExp(`^instance '${n}': `));
    assert.match(e.message, d.detail);
    assert.equal(e.hint, `restore the file from a backup, or remove the instance (its disk goes too): kumo delete ${n}`);
    assert.doesNotMatch(s.stderr, /internal error/);
  }
  const rep = await k(['repair']);
  assert.equal(rep.code, 0, rep.stderr);
  for (const n of Object.keys(DAMAGE)) assert.equal(existsSync(join(home, 'instances', n)), true, `repair removed ${n}`);
  for (const n of Object.keys(DAMAGE)) {
    const d = await k(['delete', n]);
    assert.equal(d.code, 0, `${n}: ${d.stderr}`);
    assert.equal(existsSync(join(home, 'instances', n)), false);
  }
  const l = await k(['list', '--json']);
  assert.deepEqual((JSON.parse(l.stdout) as { name: string; status: string }[]).map((r) => [r.name, r.status]), [['good', 'stopped']]);
});
