/**
 * Exec latency on a ready VM, with and without ssh connection sharing, in one run:
 *   node dist/bench/exec.bench.js [--runs N] [--name NAME]
 *
 * `kumo exec NAME -- true` (a whole CLI process, node start included) and the library's
 * `vm.exec('true')`, each through the instance's shared master and with KUMO_SSH_SHARING=0 /
 * `{ share: false }` (a new ssh connection, key exchange and login each time), interleaved round
 * by round so that a busy host slows all of them alike. Bare `ssh true` both ways is the floor.
 * With --name, an existing running instance of KUMO_HOME is used; else the test image is
 * launched in a temporary KUMO_HOME (one boot) and deleted afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, report, timeAsync, timeCommand } from './lib.js';
import { getInstance, launch, type Instance } from '../src/index.js';
import { controlPathFor } from '../src/guest/master.js';
import { sshArgv } from '../src/guest/ssh.js';
import { testImagePath } from '../test/helpers/test-image.js';

const args = process.argv.slice(2);
const opt = (k: string) => (args.includes(k) ? args[args.indexOf(k) + 1] : undefined);
const RUNS = Number(opt('--runs')) || 20;
const bin = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'kumo.js');

let tmpHome: string | undefined;
let vm: Instance;
const given = opt('--name');
if (given) vm = await getInstance(given);
else {
  tmpHome = await mkdtemp(join(tmpdir(), 'kumo-bench-exec-'));
  const t0 = Date.now();
  vm = await launch({ image: testImagePath(), home: tmpHome, name: 'bench-exec', memory: '1G', timeout: 900 });
  console.log(`launched and ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
try {
  const env = { ...process.env, ...(tmpHome ? { KUMO_HOME: tmpHome } : {}) };
  const envOff = { ...env, KUMO_SSH_SHARING: '0' };
  const t = await vm.sshTarget();
  const cp = await controlPathFor(t);
  if (!cp) throw new Error('ssh sharing is off here (KUMO_SSH_SHARING, or no private runtime folder)');
  const bareShared = ['ssh', ...sshArgv(t, 'true', { controlPath: cp })];
  const bareNew = ['ssh', ...sshArgv(t, 'true')];
  // Warm-up: the master exists, caches are filled.
  await vm.exec('true', { check: true });
  timeCommand([process.execPath, bin, 'exec', vm.name, '--', 'true'], 1, env);

  const s = { cliShared: [] as number[], cliNew: [] as number[], libShared: [] as number[], libNew: [] as number[], sshShared: [] as number[], sshNew: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    s.cliShared.push(...timeCommand([process.execPath, bin, 'exec', vm.name, '--', 'true'], 1, env));
    s.cliNew.push(...timeCommand([process.execPath, bin, 'exec', vm.name, '--', 'true'], 1, envOff));
    s.libShared.push(...(await timeAsync(() => vm.exec('true', { check: true }), 1)));
    s.libNew.push(...(await timeAsync(() => vm.exec('true', { check: true, share: false }), 1)));
    s.sshShared.push(...timeCommand(bareShared, 1));
    s.sshNew.push(...timeCommand(bareNew, 1));
  }
  const m = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, median(v)])) as Record<keyof typeof s, number>;
  report(`exec latency on a ready VM (${RUNS} runs each, interleaved; 'true' in the guest)`, [
    { name: 'ssh true, new connection (floor, no sharing)', medianMs: m.sshNew },
    { name: 'ssh true through the master (floor, shared)', medianMs: m.sshShared, baseline: 'new connection', ratio: m.sshShared / m.sshNew },
    { name: 'library vm.exec, share: false', medianMs: m.libNew },
    { name: 'library vm.exec, shared (default)', medianMs: m.libShared, baseline: 'share: false', ratio: m.libShared / m.libNew },
    { name: 'kumo exec CLI, KUMO_SSH_SHARING=0', medianMs: m.cliNew },
    { name: 'kumo exec CLI, shared (default)', medianMs: m.cliShared, baseline: 'KUMO_SSH_SHARING=0', ratio: m.cliShared / m.cliNew },
  ]);
  console.log(`\n(kumo exec shared minus bare shared ssh: ${(m.cliShared - m.sshShared).toFixed(0)} ms of node start and kumo's own work)`);
} finally {
  if (tmpHome) {
    await vm.delete().catch(() => {});
    await rm(tmpHome, { recursive: true, force: true });
  }
}
