import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

test('a probe whose QEMU fails or is missing says so (the probe can fail)', async () => {
  const d = await mkdtemp(join(tmpdir(), 'kumo-fakeqemu-'));
  try {
    const fake = join(d, 'qemu-system-x86_64');
    await writeFile(fake, '#!/bin/sh\necho "qemu-system-x86_64: -accel tcg: invalid accelerator" >&2\nexit 1\n', { mode: 0o755 });
    const p = await probeAccel('tcg', { qemu: fake, timeoutMs: 10000 });
    assert.deepEqual(p, { usable: false, reason: 'TCG probe guest failed: qemu-system-x86_64: -accel tcg: invalid accelerator' });
    await assert.rejects(probeAccel('tcg', { qemu: join(d, 'missing') }), (e: unknown) => (e as { code: string }).code === 'TOOL_MISSING');
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('--accel tcg never probes; auto follows the probe and says why; kvm fails with a hint where the probe fails', async () => {
  // A QEMU that does not exist: any probe would fail, so a TCG answer proves that none ran.
  assert.deepEqual(await detectAccel(undefined, { want: 'tcg', qemu: '/nonexistent/qemu' }), { accel: 'tcg', reason: 'asked for TCG' });
  const saved = process.env.KUMO_ACCEL;
  delete process.env.KUMO_ACCEL;
  try {
    const kvm = await probeAccel('kvm');
    const auto = await detectAccel(undefined, { want: 'auto' });
    if (kvm.usable) {
      assert.equal(auto.accel, 'kvm');
      assert.match(auto.reason, /^KVM probe guest ran in /);
      assert.equal((await detectAccel(undefined, { want: 'kvm' })).accel, 'kvm');
    } else {
      assert.deepEqual(auto, { accel: 'tcg', reason: `TCG, because ${kvm.reason}` });
      await assert.rejects(detectAccel(undefined, { want: 'kvm' }), (e: unknown) => {
        const k = e as { code: string; message: string; hint: string };
        assert.equal(k.code, 'KVM_UNUSABLE');
        assert.equal(k.message, `KVM was asked for but does not work here: ${kvm.reason}`);
        assert.match(k.hint, /use --accel tcg/);
        return true;
      });
    }
    // KUMO_ACCEL=tcg turns auto into TCG, again without a probe.
    process.env.KUMO_ACCEL = 'tcg';
    assert.deepEqual(await detectAccel(undefined, { want: 'auto', qemu: '/nonexistent/qemu' }), { accel: 'tcg', reason: 'asked for TCG' });
  } finally {
    if (saved === undefined) delete process.env.KUMO_ACCEL;
    else process.env.KUMO_ACCEL = saved;
  }
});
