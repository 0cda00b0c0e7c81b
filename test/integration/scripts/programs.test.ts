// scripts/programs.txt names the right package for each program, against dpkg's own records, and
// the packages setup.sh assumes (ESSENTIAL) are Essential in Debian.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { readProgramList, setupArray } from '../../helpers/programs.js';

const dpkg = spawnSync('dpkg-query', ['--version']).status === 0;

function which(p: string): string | undefined {
  // `type -P` finds files only (a shell builtin such as printf does not count)
  const r = spawnSync('bash', ['-c', 'PATH="$PATH:/usr/sbin:/sbin" type -P "$1"', 'bash', p], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

test('each listed program is on PATH and belongs to the package the list names', { skip: !dpkg && 'not a dpkg system' }, () => {
  const wrong: string[] = [];
  for (const e of readProgramList()) {
    const path = which(e.program);
    if (!path) {
      wrong.push(`${e.program}: not installed (package ${e.pkg}; run scripts/setup.sh)`);
      continue;
    }
    // dpkg records the path a package ships; usrmerge may put /bin and /usr/bin together
    const candidates = [...new Set([path, realpathSync(path), path.replace(/^\/usr/, ''), realpathSync(path).replace(/^\/usr/, '')])];
    const owners = new Set<string>();
    for (const c of candidates) {
      const r = spawnSync('dpkg-query', ['-S', c], { encoding: 'utf8' });
      for (const l of r.stdout.split('\n')) {
        const m = l.match(/^([^:]+(?:, [^:]+)*): /);
        if (m) for (const o of m[1]!.split(', ')) owners.add(o.replace(/:.*/, ''));
      }
    }
    if (!owners.has(e.pkg)) wrong.push(`${e.program} (${path}) is from ${[...owners].join(', ') || 'no package'}, not ${e.pkg}`);
  }
  assert.deepEqual(wrong, []);
});

test("the packages setup.sh takes for granted are Essential in Debian", { skip: !dpkg && 'not a dpkg system' }, () => {
  for (const p of setupArray('ESSENTIAL')) {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Essential}', p], { encoding: 'utf8' });
    assert.equal(r.stdout.trim(), 'yes', `${p} is not Essential: install it in scripts/setup.sh (PACKAGES)`);
  }
});
