import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_BACKENDS, driverBackends, driverNames, folderDriver, registerBuiltinDrivers, registerBackend, getDriver } from '../../../src/driver/index.js';
import { driverOptionTable } from '../../../src/config/driver-options.js';
import { validateSpec } from '../../../src/config/spec.js';
import { ValidationError } from '../../../src/core/errors.js';
import { pathsFor } from '../../../src/config/paths.js';

test('registerBuiltinDrivers registers qemu and libvirt with their checks and spec fields; idempotent', async () => {
  registerBuiltinDrivers();
  registerBuiltinDrivers();
  assert.deepEqual(BUILTIN_BACKENDS.map((b) => b.name), ['qemu', 'libvirt', 'virtualbox']);
  for (const n of ['qemu', 'libvirt', 'virtualbox']) assert.ok(driverNames().includes(n), n);
  assert.equal(driverNames().filter((n) => n === 'libvirt').length, 1);
  for (const b of driverBackends().filter((x) => BUILTIN_BACKENDS.includes(x))) assert.equal(typeof b.checks, 'function', `${b.name} has checks`);
  // The libvirt backend's fields reach the spec validator through config's own table.
  assert.deepEqual(Object.keys(driverOptionTable().libvirt ?? {}).sort(), ['connect', 'network', 'pool']);
  assert.equal(driverOptionTable().qemu, undefined);
  assert.deepEqual(Object.keys(driverOptionTable().virtualbox ?? {}).sort(), ['ostype', 'vrdePort']);
  assert.equal((await getDriver('virtualbox')).name, 'virtualbox');
  assert.equal((await getDriver('libvirt')).name, 'libvirt');
  assert.equal(await getDriver('qemu'), await getDriver('qemu'), 'one driver object per backend');
});

test('the spec validator takes driver fields from whoever declares them (config knows no driver)', () => {
  const fields = { toy: { color: { flag: '--color', check: (v: unknown) => { if (v !== 'red') throw Object.assign(new Error('must be red'), { hint: 'red' }); return v; } } } };
  const s = validateSpec({ name: 'a', driver: 'toy', color: 'red' }, { drivers: ['toy'], driverOptionFields: fields });
  assert.deepEqual(s.driverOptions, { color: 'red' });
  assert.throws(() => validateSpec({ name: 'a', color: 'red' }, { driverOptionFields: fields }), (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    assert.equal(e.issues[0]!.path, 'color');
    assert.match(e.issues[0]!.message, /applies only to the toy driver/);
    assert.match(e.issues[0]!.hint!, /--driver toy .*--color/);
    return true;
  });
  // A registered backend's fields join the table.
  registerBackend({ name: 'toy-registered', create: () => { throw new Error('not made in this test'); }, optionFields: { shade: { flag: '--shade', check: (v) => v } } });
  assert.deepEqual(validateSpec({ name: 'a', driver: 'toy-registered', shade: 'x' }).driverOptions, { shade: 'x' });
});

test('a folder without a readable record is looked at by the driver that finds machines from the folder alone (qemu)', async () => {
  const paths = pathsFor('/tmp/kumo-registry-test');
  const { driver, rt } = await folderDriver(paths, 'web', '/tmp/kumo-registry-test/instances/web');
  assert.equal(driver.name, 'qemu');
  assert.equal(rt.dir, '/tmp/kumo-registry-test/instances/web');
  assert.equal(rt.disk.path, '/tmp/kumo-registry-test/instances/web/disk.qcow2');
});

test('a machine larger than the host is refused before anything is made', async () => {
  const { checkHostMemory } = await import('../../../src/driver/shared/resources.js');
  const GiB = 1024 ** 3;
  assert.doesNotThrow(() => checkHostMemory(1024, 24 * GiB));
  assert.doesNotThrow(() => checkHostMemory(24 * 1024, 24 * GiB));
  assert.throws(() => checkHostMemory(1024 * 1024, 24 * GiB), (e: Error & { code?: string; hint?: string }) => e.code === 'MEMORY_TOO_LARGE' && /memory 1\.0 TiB is more than this host has \(24\.0 GiB in all\)/.test(e.message) && /at most 24\.0 GiB/.test(e.hint ?? ''));
});
