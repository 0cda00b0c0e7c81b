/** Errors of the image builder. */
import { DiskFullError, EnvironmentError, KumoError } from '../core/errors.js';

/** An element script (or a package install of an element) exited non-zero. */
export class ScriptFailedError extends KumoError {
  constructor(what: string, status: string, tail: string[], logFile: string) {
    super('BUILD_SCRIPT_FAILED', 'external', `${what} failed (${status})${tail.length ? `; its last lines:\n${tail.map((l) => `  | ${l}`).join('\n')}` : ''}`, {
      hint: `the full build log is ${logFile}`,
      details: { what, status, logFile },
    });
  }
}

export class MirrorUnreachableError extends EnvironmentError {
  constructor(url: string, why: string) {
    super('MIRROR_UNREACHABLE', `the package mirror ${url} is unreachable: ${why}`, {
      hint: 'check the network or give another mirror with --mirror URL',
      details: { url },
    });
  }
}

/** Out of space during a build: the one DiskFullError (src/core), naming the build step (details.buildStep) and the log. */
export function buildDiskFull(where: string, logFile?: string): DiskFullError {
  return new DiskFullError(`no space left on device while building the image (${where})`, {
    hint: `free some space on the file system of the build cache${logFile ? `; the full build log is ${logFile}` : ''}`,
    details: { buildStep: where },
  });
}

/** Whether `e` is a DiskFullError made by `buildDiskFull` (it names the build step already). */
export function isBuildDiskFull(e: unknown): boolean {
  return e instanceof DiskFullError && e.details?.buildStep !== undefined;
}

export class NotRootError extends EnvironmentError {
  constructor() {
    super('BUILD_NEEDS_ROOT', 'building an image needs root (chroot, mounts and device nodes in the root tree)', {
      hint: 'run it as root (sudo kumo image build ...); rootless builds with user namespaces are not supported yet',
    });
  }
}

/** The distribution's archive keyring is not on the build host: the bootstrap could not be verified. */
export class KeyringMissingError extends EnvironmentError {
  constructor(distro: string, keyring: string, pkg: string) {
    super('KEYRING_MISSING', `cannot verify the ${distro} packages: the archive keyring ${keyring} is not installed`, {
      hint: `install it (apt-get install ${pkg}); kumo does not bootstrap from packages it cannot verify`,
      details: { distro, keyring, package: pkg },
    });
  }
}
