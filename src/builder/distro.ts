/**
 * The distribution layer, as data. Adding a distribution or a release is a table entry, not code:
 * the bootstrap tool and its arguments, the mirror, the apt suites written into the image, the
 * kernel package and the keyring used to verify the bootstrap.
 */
import { closest } from '../core/text.js';
import { InvalidInputError } from '../core/errors.js';

export interface ReleaseInfo {
  /** Suite given to the bootstrap tool. */
  suite: string;
  /** Lines of the image's apt sources (one-line format), `{mirror}` / `{security}` substituted. */
  aptSources: string[];
}

export interface DistroInfo {
  name: string;
  /** The tool that makes the first root tree. Only debootstrap is implemented today. */
  bootstrap: 'debootstrap';
  /** debootstrap --variant. */
  variant: string;
  mirror: string;
  securityMirror: string;
  components: string[];
  /** The archive keyring that verifies the bootstrap (required: kumo never bootstraps unverified). */
  keyring: string;
  /** The Debian/Ubuntu package that provides `keyring` on the build host. */
  keyringPackage: string;
  /** Installed by the `vm` element (exported to scripts as KUMO_KERNEL_PACKAGE). */
  kernelPackage: string;
  defaultRelease: string;
  releases: Record<string, ReleaseInfo>;
}

export const DISTROS: Record<string, DistroInfo> = {
  debian: {
    name: 'debian',
    bootstrap: 'debootstrap',
    variant: 'minbase',
    mirror: 'http://deb.debian.org/debian',
    securityMirror: 'http://deb.debian.org/debian-security',
    components: ['main'],
    keyring: '/usr/share/keyrings/debian-archive-keyring.gpg',
    keyringPackage: 'debian-archive-keyring',
    kernelPackage: 'linux-image-cloud-amd64',
    defaultRelease: 'bookworm',
    releases: {
      bookworm: {
        suite: 'bookworm',
        aptSources: [
          'deb {mirror} bookworm {components}',
          'deb {mirror} bookworm-updates {components}',
          'deb {security} bookworm-security {components}',
        ],
      },
      trixie: {
        suite: 'trixie',
        aptSources: [
          'deb {mirror} trixie {components}',
          'deb {mirror} trixie-updates {components}',
          'deb {security} trixie-security {components}',
        ],
      },
    },
  },
  ubuntu: {
    name: 'ubuntu',
    bootstrap: 'debootstrap',
    variant: 'minbase',
    mirror: 'http://archive.ubuntu.com/ubuntu',
    securityMirror: 'http://security.ubuntu.com/ubuntu',
    components: ['main', 'universe'],
    keyring: '/usr/share/keyrings/ubuntu-archive-keyring.gpg',
    keyringPackage: 'ubuntu-keyring',
    kernelPackage: 'linux-image-virtual',
    defaultRelease: 'noble',
    releases: {
      jammy: {
        suite: 'jammy',
        aptSources: ['deb {mirror} jammy {components}', 'deb {mirror} jammy-updates {components}', 'deb {security} jammy-security {components}'],
      },
      noble: {
        suite: 'noble',
        aptSources: ['deb {mirror} noble {components}', 'deb {mirror} noble-updates {components}', 'deb {security} noble-security {components}'],
      },
    },
  },
};

/**
 * The bootstrap command (argv, before the user-namespace wrapper): always with the distribution's
 * keyring and `--force-check-gpg`, so debootstrap fails instead of warning and going on unverified
 * over plain HTTP when a signature cannot be checked.
 */
export function bootstrapArgv(d: ResolvedDistro, o: { arch: string; cacheDir: string; target: string }): string[] {
  return [
    d.distro.bootstrap,
    `--variant=${d.distro.variant}`,
    `--arch=${o.arch}`,
    `--components=${d.distro.components.join(',')}`,
    `--keyring=${d.distro.keyring}`,
    '--force-check-gpg',
    `--cache-dir=${o.cacheDir}`,
    d.info.suite,
    o.target,
    d.mirror,
  ];
}

export interface ResolvedDistro {
  distro: DistroInfo;
  release: string;
  info: ReleaseInfo;
  mirror: string;
  /** The image's /etc/apt/sources.list. */
  sourcesList: string;
}

export function resolveDistro(name: string, release: string | undefined, mirror?: string): ResolvedDistro {
  const distro = DISTROS[name];
  if (!distro) {
    const s = closest(name, Object.keys(DISTROS));
    throw new InvalidInputError('UNKNOWN_DISTRO', `unknown distribution '${name}'${s.length ? ` (did you mean '${s[0]}'?)` : ''}`, {
      hint: `known distributions: ${Object.keys(DISTROS).join(', ')}`,
    });
  }
  const rel = release ?? distro.defaultRelease;
  const info = distro.releases[rel];
  if (!info) {
    const s = closest(rel, Object.keys(distro.releases));
    throw new InvalidInputError('UNKNOWN_RELEASE', `unknown ${name} release '${rel}'${s.length ? ` (did you mean '${s[0]}'?)` : ''}`, {
      hint: `known ${name} releases: ${Object.keys(distro.releases).join(', ')}`,
    });
  }
  const m = mirror ?? distro.mirror;
  const sec = mirror ? distro.securityMirror.replace(distro.mirror, m) : distro.securityMirror;
  const sourcesList =
    info.aptSources.map((l) => l.replace('{mirror}', m).replace('{security}', sec).replace('{components}', distro.components.join(' '))).join('\n') + '\n';
  return { distro, release: rel, info, mirror: m, sourcesList };
}
