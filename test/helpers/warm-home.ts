/**
 * One warm template shared by the e2e files that test what a VM does, not how it boots
 * (disposable, ssh-sharing, reset): the first file that asks makes it (the one boot), every later
 * file launches clones of it, restored and not booted. test/run.js makes the shared home for a run
 * (KUMO_E2E_WARM_HOME) and removes it at the end; a file run on its own gets a home of its own,
 * which its done() removes.
 *
 * Each file launches with WARM_SHAPE (the template's key: image, vCPUs, memory) and checks that
 * its VM was restored from the template, so a change that stops clones from matching fails
 * loudly instead of quietly booting.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kumo } from './cli.js';
import { testImagePath } from './test-image.js';

/** The shape of the shared template; a launch must give the same to be a clone of it. */
export const WARM_SHAPE = { cpus: 2, memory: '1G' } as const;

export interface WarmHome {
  home: string;
  /** The template's id. */
  template: string;
  /** 'made' when this call booted it, 'current' when an earlier file had. */
  outcome: string;
  /** Remove the home when it is this file's own (a shared one is test/run.js's to remove). */
  done(): Promise<void>;
}

export async function warmHome(): Promise<WarmHome> {
  const shared = process.env.KUMO_E2E_WARM_HOME;
  const home = shared || (await mkdtemp(join(tmpdir(), 'kumo-e2e-warm-home-')));
  const r = await kumo(
    ['image', 'warm', testImagePath(), '--cpus', String(WARM_SHAPE.cpus), '--memory', WARM_SHAPE.memory, '--timeout', '900', '--json'],
    { home, timeoutMs: 20 * 60_000 },
  );
  assert.equal(r.code, 0, `kumo image warm: ${r.stderr}`);
  const t = JSON.parse(r.stdout) as { id: string; outcome: string };
  return {
    home,
    template: t.id,
    outcome: t.outcome,
    async done() {
      if (shared) return;
      await kumo(['delete', '--all', '--force'], { home }).catch(() => {});
      await rm(home, { recursive: true, force: true });
    },
  };
}
