import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, InstanceRunningError } from '../../../src/core/errors.js';
import { EXIT_CODES, exitCodeFor } from '../../../src/cli/exit.js';

test('InstanceRunningError: one code for "instance is running", a hint that says how to stop it, the instance in details', () => {
  const e = new InstanceRunningError('web');
  assert.ok(e instanceof ConflictError);
  assert.equal(e.code, 'INSTANCE_RUNNING');
  assert.equal(e.kind, 'conflict');
  assert.equal(exitCodeFor(e), EXIT_CODES.conflict);
  assert.equal(e.message, "instance 'web' is running");
  assert.equal(e.hint, 'stop it first: kumo stop web');
  assert.deepEqual(e.details, { instance: 'web' });
});

test('InstanceRunningError: the message, hint and details of one use case', () => {
  const e = new InstanceRunningError('web', { message: "cannot clone instance 'web' while it is paused", hint: 'kumo clone --stop web copy', details: { state: 'paused' } });
  assert.equal(e.code, 'INSTANCE_RUNNING');
  assert.equal(e.message, "cannot clone instance 'web' while it is paused");
  assert.equal(e.hint, 'kumo clone --stop web copy');
  assert.deepEqual(e.details, { instance: 'web', state: 'paused' });
});
