// Every host program a test runs is listed in scripts/programs.txt with a package that
// scripts/setup.sh installs (or that Debian always has), so a fresh machine has it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readProgramList, scanPrograms, setupArray } from '../../helpers/programs.js';

/** Names the scanner finds that are not host programs the tests need. */
const NOT_HOST_PROGRAMS = new Map([
  ['jq', 'installed and run inside a build chroot by a test element (test/integration/builder/cli.test.ts)'],
  ['policy-rc.d', 'a file the builder writes into the image tree'],
  ['nologin', 'the login shell of a system account, never run'],
  ['qemu-img-does-not-exist', 'a test of the error for a missing program'],
]);

test('every program that a test runs is in scripts/programs.txt', () => {
  const listed = new Set(readProgramList().map((e) => e.program));
  const missing = [...scanPrograms(['test'])].filter(([p]) => !listed.has(p) && !NOT_HOST_PROGRAMS.has(p));
  assert.deepEqual(
    missing.map(([p, files]) => `${p} (run by ${files.join(', ')})`),
    [],
    'add each to scripts/programs.txt with its Debian package, and the package to scripts/setup.sh',
  );
});

test("every package in scripts/programs.txt is installed by scripts/setup.sh or is one of Debian's Essential ones", () => {
  const installs = new Set([...setupArray('PACKAGES'), ...setupArray('ESSENTIAL')]);
  const bad = readProgramList().filter((e) => !installs.has(e.pkg));
  assert.deepEqual(bad.map((e) => `scripts/programs.txt:${e.line}: ${e.program} needs ${e.pkg}, which setup.sh does not install`), []);
});

test('the scanner finds what it is meant to (it cannot pass by finding nothing)', () => {
  const found = scanPrograms(['test']);
  // programs known to be run by tests today, through each of the call shapes
  for (const p of ['qemu-img', 'isoinfo', 'virt-xml-validate', 'getent', 'bsdtar', 'libvirtd', 'cloud-localds']) assert.ok(found.has(p), `scanner missed ${p}`);
  assert.ok(found.size > 30, `only ${found.size} programs found`);
});

test('the list parser rejects a malformed line and setup.sh arrays parse', () => {
  assert.throws(() => readProgramList('qemu-img qemu-utils\nlonely\n'), /programs.txt:2/);
  assert.deepEqual(readProgramList('# c\n\nssh openssh-client # x\n'), [{ program: 'ssh', pkg: 'openssh-client', line: 3 }]);
  assert.deepEqual(setupArray('P', 'X=1\nP=(\n  a b  # c d\n  e\n)\n'), ['a', 'b', 'e']);
  assert.ok(setupArray('PACKAGES').includes('libxml2-utils'));
});
