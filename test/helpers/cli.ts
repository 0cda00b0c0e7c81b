/**
 * Run the real kumo command (bin/kumo.js) as a user would, with a given KUMO_HOME.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repo root: dist/test/helpers/cli.js is three levels below it. */
export const REPO = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
export const KUMO_BIN = join(REPO, 'bin', 'kumo.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function kumo(args: string[], opts: { home?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
    delete env.FORCE_COLOR;
    if (opts.home) env.KUMO_HOME = opts.home;
    const child = spawn(process.execPath, [KUMO_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
