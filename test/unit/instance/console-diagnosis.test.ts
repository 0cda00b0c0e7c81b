import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consoleDiagnosis } from '../../../src/instance/logs.js';

// Lines from a real CI run: a 2-vCPU UEFI guest under TCG whose vCPUs stalled during boot.
const STALLED = [
  '[  184.661077] watchdog: BUG: soft lockup - CPU#1 stuck for 163s! [systemd:1]',
  '[  220.580878] rcu: INFO: rcu_preempt self-detected stall on CPU',
  '[  220.580878] rcu: rcu_preempt kthread starved for 52517 jiffies! g3137 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x0 ->cpu=1',
];

test('a console with a kernel CPU stall is named, with the first stall line and what helps', () => {
  const d = consoleDiagnosis(['Booting Linux', ...STALLED]);
  assert.ok(d);
  assert.match(d, /^the guest's kernel reports a CPU stall \(watchdog: BUG: soft lockup - CPU#1 stuck for 163s! \[systemd:1\]\)/);
  assert.match(d, /--cpus 1/);
  assert.match(d, /kumo doctor/);
  assert.match(consoleDiagnosis([STALLED[1]!]) ?? '', /\(rcu: INFO: rcu_preempt self-detected stall on CPU\)/);
  assert.match(consoleDiagnosis(['[ 3.2] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:']) ?? '', /CPU stall/);
});

test('an ordinary console, or an empty one, gets no diagnosis', () => {
  assert.equal(consoleDiagnosis([]), undefined);
  assert.equal(consoleDiagnosis([
    '[    1.02] rcu: Hierarchical RCU implementation.',
    '[    2.11] watchdog: Delayed init of the lockup detector failed: -19',
    'Debian GNU/Linux 12 kumo ttyS0',
    'kumo login:',
  ]), undefined);
});
