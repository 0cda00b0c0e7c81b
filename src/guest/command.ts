/**
 * The command line a guest's shell receives for an exec: ssh hands the guest ONE string, which the
 * login shell parses, so every word kumo adds is quoted (shellQuote) and every name is checked.
 *
 *   string   shell syntax, run by the login shell as is ('ls | wc -l')
 *   argv     each word reaches the program as one argument (['printf', '%s\n', 'a b'])
 *
 * Options wrap it, innermost first:
 *   cwd      `cd -- DIR || exit 1` before it
 *   env      `export K='V'` lines before it (after sudo, so that sudo's env_reset keeps them)
 *   user     `sudo -n -u USER -- sh -c '...'` (never asks for a password: fails at once)
 *   timeout  GNU `timeout -k 5 Ns "$SHELL" -c '...'` in the guest when it has timeout(1), so
 *            the guest's processes are stopped too, not only the local ssh (exit 124 / 137)
 */
import { InvalidInputError } from '../core/errors.js';
import { shellQuote } from './ssh.js';

export interface RemoteCommandOptions {
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  user?: string;
  /** Stop the command in the guest after this many milliseconds. */
  timeoutMs?: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USER_NAME = /^(?:[A-Za-z_][A-Za-z0-9_.-]*\$?|#\d+)$/;

/** One word for the shell, always quoted (unlike shellQuote, which leaves plain words bare). */
function q(s: string): string {
  return shellQuote([s]);
}

function noNul(what: string, s: string): void {
  if (s.includes('\0')) throw new InvalidInputError('INVALID_COMMAND', `${what} contains a NUL byte`, { hint: 'a shell cannot pass NUL bytes; send such data on stdin' });
}

/** The program a command runs, for messages: argv[0], or the first word of a shell string. */
export function commandName(command: string | readonly string[]): string {
  if (typeof command !== 'string') return command[0] ?? '';
  return /^\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*([^\s;&|()<>]+)/.exec(command)?.[1] ?? command.trim();
}

/** The remote command string for `command` with the options applied (see the module comment). */
export function remoteCommand(command: string | readonly string[], o: RemoteCommandOptions = {}): string {
  if (typeof command !== 'string') {
    if (!command.length || command[0] === '') throw new InvalidInputError('INVALID_COMMAND', 'the command is empty', { hint: "give the program and its arguments, e.g. ['uname', '-a']" });
    for (const w of command) noNul('an argument', w);
  } else {
    if (!command.trim()) throw new InvalidInputError('INVALID_COMMAND', 'the command is empty', { hint: "give a shell command, e.g. 'uname -a'" });
    noNul('the command', command);
  }
  let script = typeof command === 'string' ? command : shellQuote(command);
  const pre: string[] = [];
  if (o.cwd !== undefined) {
    if (!o.cwd) throw new InvalidInputError('INVALID_CWD', 'the working folder is empty', { hint: "give a guest path, e.g. '/tmp'" });
    noNul('the working folder', o.cwd);
    pre.push(`cd -- ${q(o.cwd)} || exit 1`);
  }
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (!ENV_NAME.test(k)) throw new InvalidInputError('INVALID_ENV', `'${k}' is not an environment variable name`, { hint: 'names are letters, digits and _, not starting with a digit' });
    noNul(`the value of ${k}`, v);
    pre.push(`export ${k}=${q(v)}`);
  }
  if (pre.length) script = `${pre.join('\n')}\n${script}`;
  if (o.user !== undefined) {
    if (!USER_NAME.test(o.user)) throw new InvalidInputError('INVALID_USER', `'${o.user}' is not a user name`, { hint: "give a guest user, e.g. 'root' or 'www-data'" });
    script = `sudo -n -u ${q(o.user)} -- sh -c ${q(script)}`;
  }
  if (o.timeoutMs !== undefined) {
    if (!(o.timeoutMs > 0) || !Number.isFinite(o.timeoutMs)) throw new InvalidInputError('INVALID_TIMEOUT', `timeout ${o.timeoutMs} ms is not a positive number`, { hint: 'give milliseconds, e.g. 30000' });
    const sec = `${Math.max(0.001, o.timeoutMs / 1000).toFixed(3).replace(/\.?0+$/, '')}s`;
    const sh = '"${SHELL:-/bin/sh}" -c ' + q(script);
    script = `if command -v timeout >/dev/null 2>&1; then exec timeout -k 5 ${sec} ${sh}; else exec ${sh}; fi`;
  }
  return script;
}
