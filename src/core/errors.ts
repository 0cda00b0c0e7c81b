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

/** Out of space (ENOSPC/EDQUOT, qemu-img, a build): one class for every place that runs out of room. */
export class DiskFullError extends EnvironmentError {
  constructor(message: string, opts: KumoErrorOptions = {}) {
    super('DISK_FULL', message, { hint: "free some space (try 'kumo image prune') and try again", ...opts });
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
      return new DiskFullError(`cannot ${action} ${path}: no space left on device`, { cause: err });
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

// ---------------------------------------------------------------------------------------------
// The error codes

/**
 * Every error code kumo throws: code -> the kind (which picks the CLI's exit code, src/cli/exit.ts)
 * and what it means. A unit test (test/unit/core/error-codes.test.ts) checks that every code
 * thrown in src/ is listed here; add a code here when you add one there.
 */
export const ERROR_CODES = {
  // usage, input, internal
  USAGE: { kind: 'usage', meaning: 'bad command line: unknown command or option, missing argument' },
  INVALID: { kind: 'invalid', meaning: 'a validator found problems (every one listed, with its field path)' },
  INTERNAL: { kind: 'internal', meaning: 'a bug in kumo (the CLI shows it for an unexpected error)' },
  INTERRUPTED: { kind: 'interrupted', meaning: 'cancelled by a signal (Ctrl-C, SIGTERM) or an AbortSignal' },
  SPEC_PARSE: { kind: 'invalid', meaning: 'a spec file is not valid YAML or not a mapping' },
  USER_DATA_UNREADABLE: { kind: 'invalid', meaning: 'the user-data file cannot be read' },
  BAD_SIZE: { kind: 'invalid', meaning: 'a size (4G, 512M) cannot be read' },
  BAD_URL: { kind: 'invalid', meaning: 'a URL cannot be parsed or has an unsupported scheme' },
  BAD_INDEX: { kind: 'invalid', meaning: 'a simplestreams index or product file is malformed' },
  INVALID_PORT: { kind: 'invalid', meaning: 'a host port (of a forward to remove) cannot be read' },
  // files and the host
  FILE_NOT_FOUND: { kind: 'not-found', meaning: 'a file or folder does not exist' },
  FILE_EXISTS: { kind: 'conflict', meaning: 'an output file exists already' },
  IS_A_DIRECTORY: { kind: 'invalid', meaning: 'a file was expected, a directory was given' },
  NOT_A_DIRECTORY: { kind: 'invalid', meaning: 'a part of a path is not a directory' },
  PERMISSION_DENIED: { kind: 'environment', meaning: 'the owner or mode of a path forbids the access' },
  READ_ONLY_FS: { kind: 'environment', meaning: 'the file system is read-only' },
  DISK_FULL: { kind: 'environment', meaning: 'no space left on the device (DiskFullError)' },
  IO_ERROR: { kind: 'environment', meaning: 'another file system error' },
  HOME_NOT_WRITABLE: { kind: 'environment', meaning: 'KUMO_HOME cannot be created or written' },
  TOOL_MISSING: { kind: 'environment', meaning: 'a program kumo needs is not installed (ToolMissingError)' },
  KVM_UNUSABLE: { kind: 'environment', meaning: 'KVM was asked for but does not work here' },
  OVMF_MISSING: { kind: 'environment', meaning: 'UEFI firmware (OVMF) is not installed' },
  LOCKED: { kind: 'conflict', meaning: 'another kumo process holds the lock' },
  CORRUPT_STATE: { kind: 'invalid', meaning: 'a state file (instance.json, a record) cannot be read' },
  // running programs
  COMMAND_FAILED: { kind: 'external', meaning: 'a program kumo ran exited non-zero (CommandFailedError)' },
  COMMAND_TIMEOUT: { kind: 'timeout', meaning: 'a program kumo ran did not finish in time' },
  // instances
  INSTANCE_NOT_FOUND: { kind: 'not-found', meaning: 'no instance of that name' },
  INSTANCE_EXISTS: { kind: 'conflict', meaning: 'an instance of that name exists already' },
  INSTANCE_RUNNING: { kind: 'conflict', meaning: 'the operation needs a stopped instance' },
  INSTANCE_SUSPENDED: { kind: 'conflict', meaning: 'the instance is suspended: resume it, or drop its saved state' },
  STATE_SAVE_FAILED: { kind: 'external', meaning: "saving a machine's state failed (the machine is left running)" },
  STATE_RESTORE_FAILED: { kind: 'external', meaning: 'a saved machine state could not be restored (kumo boots instead)' },
  AGENT_UNAVAILABLE: { kind: 'external', meaning: 'the guest agent does not answer' },
  AGENT_ERROR: { kind: 'external', meaning: 'the guest agent refused a command' },
  AGENT_TIMEOUT: { kind: 'timeout', meaning: 'the guest agent did not answer in time' },
  IDENTITY_FAILED: { kind: 'external', meaning: "a clone could not be given its own identity (it is not used)" },
  GUEST_REFRESH_FAILED: { kind: 'external', meaning: "after a snapshot's restore the guest's clock could not be stepped nor its RNG reseeded (it runs on)" },
  TEMPLATE_NOT_FOUND: { kind: 'not-found', meaning: 'no warm template with that id' },
  TEMPLATE_IN_USE: { kind: 'conflict', meaning: 'instances are clones of the template' },
  TEMPLATE_GONE: { kind: 'conflict', meaning: 'the template was removed while a clone was made' },
  TEMPLATE_UNSUPPORTED: { kind: 'usage', meaning: 'a warm template cannot be made for this spec or driver' },
  AMBIGUOUS_TEMPLATE: { kind: 'conflict', meaning: 'a template id prefix names several templates' },
  INSTANCE_NOT_RUNNING: { kind: 'conflict', meaning: 'the operation needs a running instance' },
  INSTANCE_BUSY: { kind: 'conflict', meaning: 'another command works on the instance' },
  INSTANCE_INCOMPLETE: { kind: 'conflict', meaning: 'the instance folder is incomplete (a create that did not finish)' },
  INSTANCE_DIED: { kind: 'external', meaning: 'the machine exited while kumo waited for it' },
  STOP_FAILED: { kind: 'external', otherKinds: ['timeout'], meaning: 'the machine could not be stopped (a timeout when it outlived the wait)' },
  ORPHAN_RUNNING: { kind: 'conflict', meaning: 'a machine without an instance is still running' },
  NOT_READY: { kind: 'timeout', meaning: 'the guest did not become ready in time (NotReadyError)' },
  CLOUD_INIT_FAILED: { kind: 'external', meaning: 'cloud-init reported an error in the guest' },
  BAD_LABEL: { kind: 'invalid', meaning: 'a label (KEY=VALUE) or label selector breaks the label rules' },
  INSTANCE_SPEC_DIFFERS: { kind: 'conflict', meaning: 'launch with reuse found the instance with another spec (the differences listed)' },
  SSH_FAILED: { kind: 'external', meaning: 'ssh to the guest failed' },
  SSH_ADDRESS_UNKNOWN: { kind: 'conflict', meaning: "the guest's ssh address is not known yet" },
  SSH_KEY_NOT_FOUND: { kind: 'not-found', meaning: 'the ssh key file does not exist' },
  SSH_KEY_INVALID: { kind: 'invalid', meaning: 'the ssh key file is not an OpenSSH key' },
  BAD_SSH_KEY: { kind: 'invalid', meaning: 'a public key file holds no OpenSSH public key' },
  EXEC_FAILED: { kind: 'external', meaning: 'a command run in the guest exited non-zero (ExecFailedError)' },
  COMMAND_NOT_FOUND: { kind: 'external', meaning: 'the program to run does not exist in the guest: exit 127 (CommandNotFoundError)' },
  EXEC_TIMEOUT: { kind: 'timeout', meaning: 'a command in the guest ran longer than its timeoutMs and was stopped (ExecTimeoutError)' },
  INVALID_COMMAND: { kind: 'invalid', meaning: 'a command to run in the guest is empty or holds a NUL byte' },
  INVALID_CWD: { kind: 'invalid', meaning: 'the working folder for a guest command is empty' },
  INVALID_ENV: { kind: 'invalid', meaning: 'an environment variable name for a guest command is not a name' },
  INVALID_USER: { kind: 'invalid', meaning: 'the user to run a guest command as is not a user name' },
  INVALID_TIMEOUT: { kind: 'invalid', meaning: 'a timeout is not a positive number of milliseconds' },
  INVALID_PATH: { kind: 'invalid', meaning: 'a guest path to copy to or from is empty' },
  PORT_EXISTS: { kind: 'conflict', meaning: 'the host port is forwarded already' },
  PORT_NOT_FOUND: { kind: 'not-found', meaning: 'no such port forward' },
  PORT_IN_USE: { kind: 'conflict', meaning: 'the host port is taken by another program' },
  NO_FREE_PORT: { kind: 'conflict', meaning: 'no free host port was found' },
  PORT_ADD_FAILED: { kind: 'external', meaning: 'the driver could not add a forward to a running machine' },
  PORT_REMOVE_FAILED: { kind: 'external', meaning: 'the driver could not remove a forward from a running machine' },
  WAIT_TIMEOUT: { kind: 'timeout', meaning: 'a wait condition (port, HTTP status, log line, command) did not hold in time; names what was seen last (WaitTimeoutError)' },
  INVALID_WAIT: { kind: 'invalid', meaning: 'a wait condition can never hold (port out of range, bad regex, HTTP without a port, nothing to wait for)' },
  // snapshots, clones, golden images
  SNAPSHOT_EXISTS: { kind: 'conflict', meaning: 'a snapshot of that name exists already' },
  SNAPSHOT_NOT_FOUND: { kind: 'not-found', meaning: 'no snapshot of that name' },
  SNAPSHOT_FAILED: { kind: 'external', meaning: 'QEMU or libvirt refused the snapshot' },
  SNAPSHOT_DISK_ONLY: { kind: 'conflict', meaning: 'a disk-only snapshot cannot be restored while running' },
  SNAPSHOTS_PRESENT: { kind: 'conflict', meaning: 'the operation refuses a disk with internal snapshots' },
  BAD_SNAPSHOT_NAME: { kind: 'invalid', meaning: 'a snapshot name is not valid' },
  SEAL_FAILED: { kind: 'external', meaning: 'sealing the guest (sysprep) failed' },
  SEAL_POWEROFF_TIMEOUT: { kind: 'timeout', meaning: 'the guest did not power off after sealing' },
  // images
  UNKNOWN_IMAGE: { kind: 'not-found', meaning: 'an image reference is no alias, id, URL or file (with suggestions)' },
  IMAGE_NOT_FOUND: { kind: 'not-found', meaning: 'no image of that name or id in the store' },
  IMAGE_EXISTS: { kind: 'conflict', meaning: 'an image of that name exists already (ImageExistsError)' },
  IMAGE_IN_USE: { kind: 'conflict', meaning: 'an instance or another process uses the image' },
  AMBIGUOUS_IMAGE: { kind: 'conflict', meaning: 'an id prefix matches several images' },
  BAD_IMAGE_NAME: { kind: 'invalid', meaning: 'an image name is not valid' },
  BAD_IMAGE_REF: { kind: 'invalid', meaning: 'an image reference cannot be parsed' },
  USAGE_UNKNOWN: { kind: 'conflict', meaning: 'whether an image is in use cannot be told, so it is kept' },
  NOT_A_DISK_IMAGE: { kind: 'invalid', meaning: 'a file is not a disk image (NotAnImageError)' },
  IMAGE_NOT_SELF_CONTAINED: { kind: 'invalid', meaning: 'an image to store references other files (backing file, data file, VMDK extent, differencing parent) (ImageNotSelfContainedError)' },
  CORRUPT_IMAGE: { kind: 'invalid', meaning: 'a qcow2 image is damaged (CorruptImageError)' },
  CORRUPT_ARCHIVE: { kind: 'invalid', meaning: 'a compressed download does not decompress' },
  UNSUPPORTED_COMPRESSION: { kind: 'invalid', meaning: 'a compression kumo cannot unpack' },
  QCOW1_UNSUPPORTED: { kind: 'unsupported', meaning: 'qcow version 1 images are not supported' },
  BACKING_MISSING: { kind: 'not-found', meaning: 'a backing file of the chain does not exist' },
  BACKING_LOOP: { kind: 'invalid', meaning: 'the backing chain loops' },
  BACKING_PROTOCOL: { kind: 'unsupported', meaning: 'a backing file over a network protocol' },
  BACKING_FORMAT_REQUIRED: { kind: 'invalid', meaning: 'an overlay must record its backing format' },
  BACKING_FORMAT_MISMATCH: { kind: 'invalid', meaning: 'the recorded backing format is not the backing file\'s' },
  BAD_DISK_SIZE: { kind: 'invalid', meaning: 'a disk size is not a positive whole number of 512-byte sectors' },
  BAD_CONVERT: { kind: 'invalid', meaning: 'a conversion that qemu-img cannot do' },
  HTTP_ERROR: { kind: 'external', meaning: 'a server answered with an HTTP error status (HttpError)' },
  HTTP_DOWNGRADE: { kind: 'external', meaning: 'an https download redirected to plain http, which kumo refuses' },
  HOST_UNREACHABLE: { kind: 'external', meaning: 'a server cannot be reached (NetworkError)' },
  CHECKSUM_REQUIRED: { kind: 'invalid', meaning: 'a download from a URL needs a checksum' },
  CHECKSUM_MISMATCH: { kind: 'invalid', meaning: 'the bytes do not match the checksum' },
  CHECKSUM_NOT_LISTED: { kind: 'not-found', meaning: 'the sums file does not list the file' },
  SIGNATURE_BAD: { kind: 'invalid', meaning: 'a signed checksum file does not verify (changed, or damaged)' },
  SIGNATURE_UNKNOWN_KEY: { kind: 'invalid', meaning: 'a checksum file is signed by a key that is not in its keyring' },
  SIGNATURE_MISSING: { kind: 'invalid', meaning: 'a checksum file that the catalog says is signed carries no signature' },
  DECOMPRESSED_TOO_LARGE: { kind: 'invalid', meaning: 'a compressed image unpacks to more than it can plausibly hold (a decompression bomb; DecompressedTooLargeError)' },
  SIGNING_KEYRING_MISSING: { kind: 'environment', meaning: "the keyring file that verifies an image's checksum file does not exist (SigningKeyringMissingError)" },
  BAD_CHECKSUM: { kind: 'invalid', meaning: 'a checksum cannot be read' },
  CATALOG_INVALID: { kind: 'invalid', meaning: 'the image catalog is malformed' },
  PRODUCT_NOT_FOUND: { kind: 'not-found', meaning: 'a simplestreams product does not exist' },
  RELEASE_NOT_FOUND: { kind: 'not-found', meaning: 'no image of that release is published' },
  ARCH_UNSUPPORTED: { kind: 'unsupported', meaning: 'no image for this architecture' },
  BAD_ARCH: { kind: 'invalid', meaning: 'an architecture name is not known' },
  // the builder
  UNKNOWN_DISTRO: { kind: 'invalid', meaning: 'the builder does not know the distribution' },
  UNKNOWN_RELEASE: { kind: 'invalid', meaning: 'the builder does not know the release' },
  UNKNOWN_ELEMENT: { kind: 'not-found', meaning: 'no element of that name on the element path' },
  BAD_ELEMENT: { kind: 'invalid', meaning: 'an element folder is malformed' },
  ELEMENT_CYCLE: { kind: 'invalid', meaning: 'element dependencies form a cycle' },
  ELEMENT_CONFLICT: { kind: 'invalid', meaning: 'two elements conflict' },
  BUILD_SCRIPT_FAILED: { kind: 'external', meaning: 'an element script failed (ScriptFailedError)' },
  BUILD_NEEDS_ROOT: { kind: 'environment', meaning: 'building an image needs root (NotRootError)' },
  MIRROR_UNREACHABLE: { kind: 'environment', meaning: 'the package mirror cannot be reached (MirrorUnreachableError)' },
  KEYRING_MISSING: { kind: 'environment', meaning: "the distribution's archive keyring is not installed: the bootstrap cannot be verified (KeyringMissingError)" },
  GRUB_TOO_BIG: { kind: 'invalid', meaning: 'the boot loader does not fit in its gap' },
  // seeds (ISO 9660)
  ISO_BAD_NAME: { kind: 'invalid', meaning: 'a file name cannot go into the ISO (IsoNameError)' },
  ISO_BAD_LABEL: { kind: 'invalid', meaning: 'a volume label is not valid' },
  ISO_BAD_MODE: { kind: 'invalid', meaning: 'a file mode is not valid' },
  ISO_BAD_DATE: { kind: 'invalid', meaning: 'a date cannot be recorded in ISO 9660' },
  ISO_TOO_MANY_DIRS: { kind: 'invalid', meaning: 'too many directories for ISO 9660' },
  ISO_FILE_TOO_LARGE: { kind: 'invalid', meaning: 'a file is larger than ISO 9660 allows (IsoTooLargeError)' },
  // drivers
  DRIVER_NOT_FOUND: { kind: 'not-found', meaning: 'no registered driver of that name' },
  DRIVER_UNSUPPORTED: { kind: 'unsupported', meaning: 'the driver cannot do this (DriverUnsupportedError)' },
  QMP_ERROR: { kind: 'external', meaning: 'QEMU answered a QMP command with an error' },
  QMP_UNAVAILABLE: { kind: 'external', meaning: "QEMU's QMP socket does not answer" },
  QMP_TIMEOUT: { kind: 'timeout', meaning: 'a QMP command did not answer in time' },
  XML_INVALID: { kind: 'invalid', meaning: 'libvirt XML cannot be parsed' },
  LIBVIRT_URI_INVALID: { kind: 'invalid', meaning: 'a libvirt connection URI is not valid' },
  LIBVIRT_URI_UNSAFE: { kind: 'invalid', meaning: 'a libvirt URI from a spec file runs a program or weakens verification, or names an unknown transport' },
  MEMORY_TOO_LARGE: { kind: 'invalid', meaning: 'the memory asked for is more than this host has (checked before anything is made)' },
  LIBVIRT_URI_UNKNOWN: { kind: 'invalid', meaning: 'libvirt does not understand the connection URI' },
  LIBVIRT_UNREACHABLE: { kind: 'environment', meaning: 'libvirtd cannot be reached (LibvirtUnavailableError)' },
  LIBVIRT_PERMISSION_DENIED: { kind: 'environment', meaning: 'libvirtd refuses the connection' },
  LIBVIRT_SPEC_INVALID: { kind: 'invalid', meaning: 'a domain or volume spec is not valid' },
  LIBVIRT_POOL_REQUIRED: { kind: 'invalid', meaning: 'a remote libvirt connection needs a storage pool' },
  LIBVIRT_POOL_INVALID: { kind: 'invalid', meaning: 'a pool name is not valid' },
  LIBVIRT_POOL_NOT_FOUND: { kind: 'not-found', meaning: 'no such libvirt storage pool' },
  LIBVIRT_NETWORK_INVALID: { kind: 'invalid', meaning: 'a --network value is not user, network:NAME or bridge:NAME' },
  LIBVIRT_NETWORK_NOT_FOUND: { kind: 'not-found', meaning: 'no such libvirt network' },
  LIBVIRT_DOMAIN_EXISTS: { kind: 'conflict', meaning: 'a libvirt domain of that name exists already' },
  LIBVIRT_DOMAIN_TAKEN: { kind: 'conflict', meaning: 'a domain of that name belongs to something else (DomainNameTakenError)' },
  LIBVIRT_DOMAIN_NOT_FOUND: { kind: 'not-found', meaning: 'no such libvirt domain (DomainNotFoundError)' },
  LIBVIRT_START_FAILED: { kind: 'external', meaning: 'libvirt could not start the domain' },
  LIBVIRT_DISK_ACCESS: { kind: 'environment', meaning: "the daemon's QEMU account cannot read the instance's disk or seed" },
  LIBVIRT_VIRTLOGD_DOWN: { kind: 'environment', meaning: 'libvirtd answers but its log daemon virtlogd does not, so no machine starts' },
  LIBVIRT_POOL_CREATE_FAILED: { kind: 'external', meaning: "kumo could not make or start its own storage pool ('kumo')" },
  LIBVIRT_UNDEFINE_FAILED: { kind: 'external', meaning: 'libvirt could not undefine the domain' },
  LIBVIRT_NOT_ORPHAN: { kind: 'conflict', meaning: 'the domain has an instance, so it is not removed as an orphan' },
  LIBVIRT_ORPHAN_INVALID: { kind: 'invalid', meaning: 'the orphan domain cannot be identified' },
  LIBVIRT_ORPHAN_RUNNING: { kind: 'conflict', meaning: 'an orphan domain is still running' },
  VBOX_SPEC_INVALID: { kind: 'invalid', meaning: 'a VirtualBox setting (OS type, VRDE port, NAT rule, MAC, shape) is not valid' },
  VBOX_COMMAND_FAILED: { kind: 'external', meaning: 'a VBoxManage call failed for a reason kumo does not map' },
  VBOX_SESSION_LOCKED: { kind: 'conflict', meaning: 'the VirtualBox machine is locked by another session (the GUI, another VBoxManage)' },
  VBOX_MEDIUM_IN_USE: { kind: 'conflict', meaning: 'a VirtualBox disk medium is attached to a VM or has child media' },
  VBOX_KERNEL_DRIVER: { kind: 'environment', meaning: 'the VirtualBox kernel driver (vboxdrv) is not loaded' },
  VBOX_HOSTONLY_RANGE: { kind: 'invalid', meaning: 'VirtualBox (6.1.28+) refuses a host-only address outside 192.168.56.0/21 and /etc/vbox/networks.conf' },
  VBOX_VM_NOT_FOUND: { kind: 'not-found', meaning: 'VirtualBox has no such machine (or the instance has none yet)' },
  VBOX_VM_TAKEN: { kind: 'conflict', meaning: 'a VirtualBox machine of that name or UUID is not this kumo instance\'s' },
  VBOX_ALREADY_RUNNING: { kind: 'conflict', meaning: 'the VirtualBox machine is already running' },
  VBOX_RECORD_UNREADABLE: { kind: 'not-found', meaning: "the instance's record has no readable instance-id to name its VirtualBox machine" },
  VBOX_DISK_STANDALONE: { kind: 'invalid', meaning: 'the instance disk has no backing image for the VirtualBox base medium' },
  VBOX_ORPHAN_INVALID: { kind: 'invalid', meaning: 'an orphan VirtualBox machine cannot be identified' },
  VBOX_ORPHAN_RUNNING: { kind: 'conflict', meaning: 'an orphan VirtualBox machine is still running' },
  PROXY_ERROR: { kind: 'external', meaning: 'the download proxy refused the connection, asked for credentials (407) or refused the CONNECT tunnel (ProxyError)' },
  PROXY_INVALID: { kind: 'invalid', otherKinds: ['unsupported'], meaning: 'HTTPS_PROXY / HTTP_PROXY is not an http:// proxy URL' },
  SCHEMA_NOT_FOUND: { kind: 'not-found', meaning: 'kumo schema was asked for a schema it does not have' },
  // shared folders (--mount)
  MOUNT_SOURCE_MISSING: { kind: 'invalid', meaning: "a shared folder of an instance is gone from the host since it was created" },
  VIRTIOFSD_MISSING: { kind: 'environment', meaning: 'virtiofs was asked for and virtiofsd is not installed' },
  VIRTIOFS_UNAVAILABLE: { kind: 'environment', meaning: 'virtiofs was asked for and virtiofsd cannot run here (QEMU 7.2\'s needs root) or cannot share that folder' },
  VIRTIOFSD_FAILED: { kind: 'external', meaning: "the virtiofsd of a shared folder did not start (its log is in the instance folder)" },
  MOUNTS_NOT_SAVABLE: { kind: 'unsupported', meaning: 'QEMU cannot save (suspend) a machine with shared folders' },
  // private networks (src/network/)
  BAD_SUBNET: { kind: 'invalid', meaning: 'a --subnet is not an IPv4 CIDR kumo can use (BadSubnetError)' },
  SUBNET_OVERLAP: { kind: 'conflict', meaning: "a subnet overlaps another network's or QEMU's user network 10.0.2.0/24 (SubnetOverlapError)" },
  NO_FREE_SUBNET: { kind: 'conflict', meaning: 'every default subnet is taken: give one with --subnet' },
  NETWORK_NOT_FOUND: { kind: 'not-found', meaning: 'no private network of that name (NetworkNotFoundError)' },
  NETWORK_EXISTS: { kind: 'conflict', meaning: 'a private network of that name exists already' },
  NETWORK_IN_USE: { kind: 'conflict', meaning: 'instances are on the network, so it is not removed (NetworkInUseError names them)' },
  ADDRESS_POOL_EXHAUSTED: { kind: 'conflict', meaning: "every address of a network's subnet is given to an instance" },
  SWITCH_START_FAILED: { kind: 'external', meaning: "a network's VDE switch (vde_switch) did not start" },
  SOCKET_PATH_TOO_LONG: { kind: 'environment', meaning: "a network switch's socket path is longer than a unix socket allows: use a shorter KUMO_HOME" },
  // kumo set, kumo config, kumo list --format (src/instance/set.ts, src/config/user-config.ts, src/cli)
  DISK_SHRINK: { kind: 'invalid', meaning: 'kumo set was asked for a disk smaller than the instance has (a disk only grows)' },
  NOTHING_TO_SET: { kind: 'invalid', meaning: 'kumo set was given no field to change' },
  INSTANCE_HAS_SAVED_STATE: { kind: 'conflict', meaning: 'the instance has a saved state its next start resumes; its shape cannot change before that' },
  SET_DISK_UNSUPPORTED: { kind: 'unsupported', meaning: 'the instance runs on a libvirt pool volume that kumo set does not resize' },
  CONFIG_PARSE: { kind: 'invalid', meaning: 'the user config file (config.yaml) is not valid YAML or not a mapping' },
  CONFIG_UNKNOWN_KEY: { kind: 'invalid', meaning: 'a user config key (kumo config, config.yaml) is not a known one' },
  CONFIG_BAD_VALUE: { kind: 'invalid', meaning: 'a user config value (kumo config set, config.yaml) is not valid for its key' },
  BAD_FORMAT: { kind: 'invalid', meaning: 'a --format template names an unknown field or cannot be parsed' },
} as const satisfies Record<string, { kind: ErrorKind; otherKinds?: readonly ErrorKind[]; meaning: string }>;

/** A code of the table. */
export type ErrorCode = keyof typeof ERROR_CODES;
