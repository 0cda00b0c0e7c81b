/**
 * Typed errors. Every expected failure is a KumoError with a stable `code`, a message that names
 * the thing, and a `hint` that tells the user what to do. The CLI maps `kind` to an exit code in
 * one place (src/cli/exit.ts) and never prints a stack for a KumoError unless --debug is given.
 */

/** Families of errors; each maps to one exit code in the CLI. */
export type ErrorKind =
  | 'usage' // bad command line: unknown command/flag, missing argument
  | 'invalid' // bad input data: spec, names, files that are not what they claim
  | 'not-found' // a named thing does not exist
  | 'conflict' // exists already, in use, locked, wrong state
  | 'environment' // a tool, permission or host facility is missing
  | 'external' // a program kumo ran failed
  | 'timeout'
  | 'interrupted'
  | 'unsupported' // a driver or format cannot do this
  | 'internal';

export interface KumoErrorOptions {
  hint?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class KumoError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: string, kind: ErrorKind, message: string, opts: KumoErrorOptions = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.kind = kind;
    if (opts.hint !== undefined) this.hint = opts.hint;
    if (opts.details !== undefined) this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, kind: this.kind, message: this.message, hint: this.hint, details: this.details };
  }
}

export class UsageError extends KumoError {
  constructor(message: string, opts: KumoErrorOptions = {}) {
    super('USAGE', 'usage', message, opts);
  }
}

/** One problem found by a validator: where (a field path such as `ports[1].host`), what, and how to fix it. */
export interface ValidationIssue {
  path: string;
  message: string;
  hint?: string;
}

/** Validation reports every problem at once, each with its field path and a hint. */
export class ValidationError extends KumoError {
  readonly issues: ValidationIssue[];
  constructor(subject: string, issues: ValidationIssue[], opts: KumoErrorOptions = {}) {
    const lines = issues.map((i) => `  ${i.path}: ${i.message}${i.hint ? ` (${i.hint})` : ''}`);
    const head =
      issues.length === 1
        ? `${subject}: ${issues[0]!.path}: ${issues[0]!.message}`
        : `${subject}: ${issues.length} problems\n${lines.join('\n')}`;
    super('INVALID', 'invalid', head, { hint: opts.hint ?? (issues.length === 1 ? issues[0]!.hint : undefined), ...opts, details: { issues } });
    this.issues = issues;
  }
}

export class InvalidInputError extends KumoError {
  constructor(code: string, message: string, opts: KumoErrorOptions = {}) {
    super(code, 'invalid', message, opts);
  }
}

export class NotFoundError extends KumoError {
  constructor(code: string, message: string, opts: KumoErrorOptions = {}) {
    super(code, 'not-found', message, opts);
  }
}

export class ConflictError extends KumoError {
  constructor(code: string, message: string, opts: KumoErrorOptions = {}) {
    super(code, 'conflict', message, opts);
  }
}

export class EnvironmentError extends KumoError {
  constructor(code: string, message: string, opts: KumoErrorOptions = {}) {
    super(code, 'environment', message, opts);
  }
}

export class TimeoutError extends KumoError {
  constructor(code: string, message: string, opts: KumoErrorOptions = {}) {
    super(code, 'timeout', message, opts);
  }
}

export class InterruptedError extends KumoError {
  constructor(message = 'interrupted', opts: KumoErrorOptions = {}) {
    super('INTERRUPTED', 'interrupted', message, opts);
  }
}

/** A driver or format cannot do what was asked; the message names which and why. */
export class UnsupportedError extends KumoError {
  constructor(code: string, message: string, opts: KumoErrorOptions = {}) {
    super(code, 'unsupported', message, opts);
  }
}

/** A program kumo ran exited non-zero. Carries the argv and the tail of its stderr. */
export class CommandFailedError extends KumoError {
  readonly argv: string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(argv: string[], exitCode: number | null, signal: string | null, stderr: string, opts: KumoErrorOptions = {}) {
    const tail = stderr.trim().split('\n').slice(-8).join('\n');
    const how = exitCode !== null ? `exited with status ${exitCode}` : `was killed by ${signal ?? 'a signal'}`;
    super('COMMAND_FAILED', 'external', `${argv[0]} ${how}${tail ? `:\n${tail}` : ''}`, {
      hint: opts.hint ?? 'run again with --debug to see the full command line',
      ...opts,
      details: { argv, exitCode, signal },
    });
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** An instance is running (or busy) where the operation needs it stopped: one class, one code. */
export class InstanceRunningError extends ConflictError {
  constructor(name: string, opts: KumoErrorOptions & { message?: string } = {}) {
    const { message, ...rest } = opts;
    super('INSTANCE_RUNNING', message ?? `instance '${name}' is running`, { hint: `stop it first: kumo stop ${name}`, ...rest, details: { instance: name, ...rest.details } });
  }
}

export class ToolMissingError extends EnvironmentError {
  constructor(tool: string, pkg?: string) {
    super('TOOL_MISSING', `${tool} is not installed or not on PATH`, {
      hint: pkg ? `install it: apt-get install ${pkg} (then run 'kumo doctor')` : `install ${tool} and run 'kumo doctor'`,
      details: { tool },
    });
  }
}

export function isKumoError(e: unknown): e is KumoError {
  return e instanceof KumoError;
}

/** Turn a Node fs error into a KumoError that names the path and says what to do. */
export function fsError(err: unknown, path: string, action: string): KumoError {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return new NotFoundError('FILE_NOT_FOUND', `cannot ${action} ${path}: no such file or directory`, {
        hint: 'check the path',
        cause: err,
      });
    case 'EACCES':
    case 'EPERM':
      return new EnvironmentError('PERMISSION_DENIED', `cannot ${action} ${path}: permission denied`, {
        hint: 'check the owner and mode of the path, or choose another with --home / KUMO_HOME',
        cause: err,
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new EnvironmentError('DISK_FULL', `cannot ${action} ${path}: no space left on device`, {
        hint: "free some space (try 'kumo image prune') and try again",
        cause: err,
      });
    case 'EROFS':
      return new EnvironmentError('READ_ONLY_FS', `cannot ${action} ${path}: read-only file system`, {
        hint: 'choose a writable location with --home or KUMO_HOME',
        cause: err,
      });
    case 'EISDIR':
      return new InvalidInputError('IS_A_DIRECTORY', `cannot ${action} ${path}: it is a directory`, {
        hint: 'give a file, not a directory',
        cause: err,
      });
    case 'ENOTDIR':
      return new InvalidInputError('NOT_A_DIRECTORY', `cannot ${action} ${path}: a part of the path is not a directory`, {
        cause: err,
      });
    default:
      if (err instanceof KumoError) return err;
      return new KumoError('IO_ERROR', 'environment', `cannot ${action} ${path}: ${e?.message ?? String(err)}`, { cause: err });
  }
}
