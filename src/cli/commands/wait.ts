/** `kumo wait NAME [--port P] [--http PATH[=STATUS]] [--log REGEX] [--log-file PATH] [--command CMD] [--timeout D]`. */
import { UsageError } from '../../core/errors.js';
import { argString, optList, optString, type CommandDef, type ParsedArgs } from '../command.js';
import { INSTANCE_ARG } from '../flags.js';

const wait: CommandDef = {
  name: 'wait',
  summary: 'wait until a VM is ready, or until guest ports, HTTP answers, log lines or commands hold',
  description:
    'With no condition, waits until the VM is ready (ssh answers, cloud-init finished). With several, all must hold. ' +
    'Port and HTTP checks run inside the guest on 127.0.0.1 (no forward needed); --log reads the serial console, or the guest file given by --log-file. ' +
    'A timeout exits with status 8 and names each condition with what was seen last.',
  args: [INSTANCE_ARG],
  options: {
    port: { type: 'string', short: 'p', multiple: true, description: 'a guest TCP port accepts connections (with --http: the port to ask)', placeholder: 'PORT' },
    http: { type: 'string', description: 'an HTTP GET of PATH on the --port answers STATUS (default 200)', placeholder: 'PATH[=STATUS]' },
    log: { type: 'string', description: 'a line of the serial console (or of --log-file) matches REGEX (JavaScript syntax)', placeholder: 'REGEX' },
    'log-file': { type: 'string', description: 'look for --log in this guest file instead of the console', placeholder: 'GUESTPATH' },
    command: { type: 'string', description: 'a command run in the guest (by its shell) exits 0', placeholder: 'CMD' },
    timeout: { type: 'string', description: 'give up after D (e.g. 90s, 2m, 1500ms; default 60s; readiness: the instance\u2019s timeout)', placeholder: 'D' },
  },
  examples: ['kumo wait web', 'kumo wait web --port 80 --http /health=200', "kumo wait web --log 'Reached target.*Multi-User'", "kumo wait web --log-file /var/log/app.log --log ready --timeout 2m", "kumo wait web --command 'test -f /run/app.pid'"],
  async run(ctx, args) {
    const name = argString(args, 'name')!;
    const timeoutText = optString(args, 'timeout');
    let timeoutMs: number | undefined;
    if (timeoutText !== undefined) {
      const { parseDurationSec } = await import('../../core/units.js');
      const sec = parseDurationSec(timeoutText);
      if (sec === undefined || sec <= 0) throw new UsageError(`--timeout '${timeoutText}' is not a duration`, { hint: 'e.g. --timeout 90s, 2m, 1500ms or 30 (seconds)' });
      timeoutMs = Math.round(sec * 1000);
    }
    const strategies = await waitFlags(args);
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    if (!strategies.length) {
      const rec = await lib.readRecord(paths, name);
      await lib.requireRunning(paths, name);
      const r = await lib.waitInstanceReady(paths, rec, { onEvent: ctx.out.events(), signal: ctx.signal, ...(timeoutMs ? { timeoutSec: Math.max(1, Math.ceil(timeoutMs / 1000)) } : {}) });
      ctx.out.data({ name, ready: r }, () => ctx.out.note(`${name}: ready`));
      return;
    }
    const r = await lib.waitForInstance(paths, name, strategies, { ...(timeoutMs ? { timeoutMs } : {}), signal: ctx.signal });
    ctx.out.data({ name, ...r }, () => {
      for (const h of r.held) ctx.out.note(`${name}: ${h.condition}: ${h.seen}`);
    });
  },
};
export default wait;

/** The flags as wait strategies (checked: bad ones are usage or INVALID_WAIT errors before anything is polled). */
export async function waitFlags(args: ParsedArgs): Promise<import('../../instance/wait.js').WaitStrategy[]> {
  const { conditionsFor, parseHttpFlag } = await import('../../instance/wait.js');
  const ports = optList(args, 'port').map((p) => {
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new UsageError(`--port '${p}' is not a guest port (1-65535)`, { hint: 'e.g. --port 80' });
    return Number(p);
  });
  const out: import('../../instance/wait.js').WaitStrategy[] = [];
  const http = optString(args, 'http');
  if (http !== undefined) {
    if (ports.length !== 1) throw new UsageError(ports.length ? '--http asks one port; give one --port with it' : '--http needs --port (the guest port to ask)', { hint: 'e.g. kumo wait web --port 80 --http /health=200' });
    const h = parseHttpFlag(http);
    out.push({ http: { port: ports[0]!, path: h.path, status: h.status } });
  } else for (const p of ports) out.push({ port: p });
  const log = optString(args, 'log');
  const file = optString(args, 'log-file');
  if (file !== undefined && log === undefined) throw new UsageError('--log-file needs --log REGEX (what to look for in it)', { hint: "e.g. --log-file /var/log/app.log --log 'listening on'" });
  if (log !== undefined) out.push(file !== undefined ? { logFile: file, log } : { log });
  const command = optString(args, 'command');
  if (command !== undefined) out.push({ command });
  if (out.length) conditionsFor(out); // every problem now (regex, path, status)
  return out;
}
