import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INSTANCE_NAME_RE, SSH_PUBLIC_KEY_RE, USER_NAME_RE, isInstanceName, assertValidName } from '../../../src/core/names.js';
import { parseDurationSec, parseSize, requireSize } from '../../../src/core/units.js';
import { ValidationError } from '../../../src/core/errors.js';

test('names: instance, user and ssh public key patterns', () => {
  assert.ok(INSTANCE_NAME_RE.test('web-1') && !INSTANCE_NAME_RE.test('-web') && !INSTANCE_NAME_RE.test('Web'));
  assert.ok(isInstanceName('x'.repeat(63)) && !isInstanceName('x'.repeat(64)));
  assert.throws(() => assertValidName('a_b'), ValidationError);
  assert.ok(USER_NAME_RE.test('kumo') && USER_NAME_RE.test('_svc') && !USER_NAME_RE.test('Root') && !USER_NAME_RE.test('1user'));
  assert.ok(SSH_PUBLIC_KEY_RE.test('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1h me@host'));
  assert.ok(!SSH_PUBLIC_KEY_RE.test('-----BEGIN OPENSSH PRIVATE KEY-----'));
});

test('units: sizes (bare unit per field) and durations', () => {
  assert.equal(parseSize('2G'), 2 * 1024 ** 3);
  assert.equal(parseSize('2', 1024 ** 2), 2 * 1024 ** 2);
  assert.equal(parseSize(1.5, 1024 ** 3), 1.5 * 1024 ** 3);
  assert.equal(parseSize('2 parsecs'), undefined);
  assert.equal(parseSize(-1), undefined);
  assert.equal(requireSize('512M'), 512 * 1024 ** 2);
  assert.throws(() => requireSize('lots'), (e: Error & { code?: string }) => e.code === 'BAD_SIZE' && /'lots' is not a size/.test(e.message));
  assert.equal(parseDurationSec('90'), 90);
  assert.equal(parseDurationSec('10m'), 600);
  assert.equal(parseDurationSec('1500ms'), 1.5);
  assert.equal(parseDurationSec('2h'), 7200);
  assert.equal(parseDurationSec('soon'), undefined);
  assert.equal(parseDurationSec('1h30m'), 5400);
  assert.equal(parseDurationSec('1m500ms'), 60.5);
  for (const bad of ['', 'ms', '500ms1s', '1 h', '5mss']) assert.equal(parseDurationSec(bad), undefined, bad);
});
