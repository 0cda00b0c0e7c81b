/**
 * Running VBoxManage: every call by argv (never a shell), its failure mapped to a typed error
 * (./vboxmanage.ts `vboxError`). A missing VBoxManage is a ToolMissingError naming where to get it.
 */
import { run, which } from '../../core/exec.js';
import { ToolMissingError } from '../../core/errors.js';
import { VBOXMANAGE, vboxError } from './vboxmanage.js';

export interface VBoxResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Where VirtualBox comes from: Oracle's packages (Debian 12's archive has none). */
export const VBOX_PACKAGE_HINT = 'virtualbox-7.0 (from virtualbox.org; Debian 12 does not carry VirtualBox)';

export class VBox {
  constructor(private readonly o: { signal?: AbortSignal; timeoutMs?: number } = {}) {}

  /** The call's exit code and outputs; never throws for a non-zero exit. */
  async raw(args: readonly string[], o: { timeoutMs?: number } = {}): Promise<VBoxResult> {
    if (!(await which(VBOXMANAGE))) throw new ToolMissingError(VBOXMANAGE, VBOX_PACKAGE_HINT);
    const r = await run(VBOXMANAGE, args, {
      allowFailure: true,
      timeoutMs: o.timeoutMs ?? this.o.timeoutMs ?? 120_000,
      ...(this.o.signal ? { signal: this.o.signal } : {}),
    });
    return { code: r.code ?? 1, stdout: r.stdout, stderr: r.stderr };
  }

  /** The call's stdout; a typed error (session locked, medium in use, no kernel driver, ...) when it fails. */
  async call(args: readonly string[], what?: string, o: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.raw(args, o);
    if (r.code !== 0) throw vboxError(args, r.stderr || r.stdout, what);
    return r.stdout;
  }
}
