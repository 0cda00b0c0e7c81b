/** An interactive ssh session in a running instance (kumo ssh, kumo shell): the terminal passed through, host key verified. */
import type { CommandContext } from './command.js';

export async function sshSession(ctx: CommandContext, name: string, rest: readonly string[], printCommand: boolean): Promise<number> {
  const { requireRunning } = await import('../instance/index.js');
  const guest = await import('../guest/index.js');
  const paths = await ctx.paths();
  const t = await requireRunning(paths, name);
  const cmd = rest.length ? guest.shellQuote([...rest]) : undefined;
  const argv = guest.sshArgv(t, cmd, { tty: !!process.stdin.isTTY, ...(await guest.sharedArgvOptions(t)) });
  if (printCommand) {
    const { formatArgv } = await import('../core/log.js');
    ctx.out.line(formatArgv(['ssh', ...argv]));
    return 0;
  }
  return guest.spawnInherited('ssh', argv, ctx.signal);
}
