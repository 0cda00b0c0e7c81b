import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probeArgv, probeBootSector, probeAccel, detectAccel } from '../../../src/driver/shared/accel.js';

test('the probe boot sector is 512 bytes with the boot signature', () => {
  const b = probeBootSector();
  assert.equal(b.length, 512);
  assert.equal(b[510], 0x55);
  assert.equal(b[511], 0xaa);
  assert.deepEqual(probeArgv('/x.img', 'kvm').slice(0, 4), ['-machine', 'pc', '-accel', 'kvm']);
});

test('the probe guest really runs under TCG (timer ticks, then isa-debug-exit)', async () => {
  const p = await probeAccel('tcg', { timeoutMs: 10000 });
  assert.equal(p.usable, true, p.reason);
});

test('--accel tcg never probes; auto picks what the probe says', async () => {
  assert.deepEqual(await detectAccel(undefined, { want: 'tcg' }), { accel: 'tcg', reason: 'asked for TCG' });
  const auto = await detectAccel(undefined, { want: 'auto' });
  const kvm = await probeAccel('kvm');
  assert.equal(auto.accel, kvm.usable ? 'kvm' : 'tcg');
});
