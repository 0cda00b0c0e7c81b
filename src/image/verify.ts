/**
 * OpenPGP signatures of checksum files, checked with gpgv against one keyring file per catalog
 * entry (no user keyring, no trust database: the keyring is the trust). Two forms:
 *
 * - detached: the checksum file plus a signature file beside it (Debian's SHA512SUMS.sign,
 *   Ubuntu's SHA256SUMS.gpg);
 * - clearsigned: the checksum file is the signed message (Fedora, CentOS, AlmaLinux, Rocky
 *   CHECKSUM files). Only the signed text gpgv writes out is used: lines an attacker adds
 *   around the signed block are never parsed as checksums.
 *
 * gpgv's machine-readable status lines decide (VALIDSIG, BADSIG, ERRSIG/NO_PUBKEY); its exit code
 * alone does not tell a bad signature from an unknown key.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvironmentError, InvalidInputError, ToolMissingError } from '../core/errors.js';
import { run, which } from '../core/exec.js';

export type SignatureKind = 'detached' | 'clearsigned';

/** How a stored image was verified: by a signed checksum file, by a checksum only, or not at all. */
export type VerifiedBy = 'signature' | 'checksum' | 'none';

export interface SignatureCheck {
  kind: SignatureKind;
  /** A keyring file gpgv reads (binary OpenPGP keys: `gpg --export`, or a Debian package's .gpg). */
  keyring: string;
  /** The Debian package that provides the keyring, for the hint when it is missing. */
  keyringPackage?: string;
}

export interface Verified {
  /** The signed text (for a clearsigned file: only what the signature covers). */
  text: string;
  /** Fingerprint of the key that made the signature (40 or 64 hex digits, upper case). */
  fingerprint: string;
}

export class SignatureBadError extends InvalidInputError {
  constructor(what: string, detail: string) {
    super('SIGNATURE_BAD', `the signature of ${what} does not verify: ${detail}`, {
      hint: 'the checksum file or its signature was changed (or damaged in transit); nothing was stored. Try again later, or check the mirror',
      details: { what },
    });
  }
}

export class SignatureUnknownKeyError extends InvalidInputError {
  constructor(what: string, keyring: string, keyId: string) {
    super('SIGNATURE_UNKNOWN_KEY', `${what} is signed by key ${keyId}, which is not in the keyring ${keyring}`, {
      hint: 'nothing was stored. If the vendor changed its signing key, update the keyring (its package) or the catalog entry; otherwise the file is not the vendor\'s',
      details: { what, keyring, keyId },
    });
  }
}

export class SignatureMissingError extends InvalidInputError {
  constructor(what: string, detail: string) {
    super('SIGNATURE_MISSING', `${what} carries no signature, but its catalog entry says it is signed: ${detail}`, {
      hint: 'nothing was stored; the mirror may be incomplete or not the vendor\'s. Set signature: none in KUMO_HOME/catalog.yaml only if you trust the checksum file without it',
      details: { what },
    });
  }
}

export class SigningKeyringMissingError extends EnvironmentError {
  constructor(keyring: string, pkg?: string) {
    super('SIGNING_KEYRING_MISSING', `the keyring ${keyring} that verifies this image's checksum file does not exist`, {
      hint: pkg ? `install the package ${pkg} (apt-get install ${pkg}), or set keyring: in KUMO_HOME/catalog.yaml` : 'set keyring: in KUMO_HOME/catalog.yaml to a keyring file (gpg --export KEYID > FILE)',
      details: { keyring, ...(pkg ? { package: pkg } : {}) },
    });
  }
}

interface Status {
  validsig?: string;
  badsig?: string;
  errsig?: { keyId: string; rc: string };
  noData: boolean;
}

function parseStatus(out: string): Status {
  const s: Status = { noData: false };
  for (const line of out.split('\n')) {
    const m = /^\[GNUPG:\] (\S+)(?: (.*))?$/.exec(line.trim());
    if (!m) continue;
    const args = (m[2] ?? '').split(' ');
    if (m[1] === 'VALIDSIG') s.validsig = args[9] && /^[0-9A-F]{40,64}$/i.test(args[9]) ? args[9].toUpperCase() : args[0]!.toUpperCase();
    else if (m[1] === 'BADSIG') s.badsig = args[0];
    else if (m[1] === 'ERRSIG') s.errsig = { keyId: args[0] ?? '?', rc: args[5] ?? '' };
    else if (m[1] === 'NODATA') s.noData = true;
  }
  return s;
}

/** Whether a text looks clearsigned (an OpenPGP signed message). */
export function isClearsigned(text: string): boolean {
  return /^-----BEGIN PGP SIGNED MESSAGE-----\r?$/m.test(text);
}

/**
 * Verify `data` (a checksum file) with gpgv against `check.keyring`. `signature` is the detached
 * signature (for kind 'detached'). Returns the signed text and the signer's fingerprint; throws
 * SignatureBadError, SignatureUnknownKeyError, SignatureMissingError or SigningKeyringMissingError.
 */
export async function verifySignature(what: string, data: string | Buffer, check: SignatureCheck, signature?: Buffer, opts: { signal?: AbortSignal } = {}): Promise<Verified> {
  const st = await stat(check.keyring).catch(() => undefined);
  if (!st || !st.isFile()) throw new SigningKeyringMissingError(check.keyring, check.keyringPackage);
  if (!(await which('gpgv'))) throw new ToolMissingError('gpgv', 'gpgv');
  const text = typeof data === 'string' ? data : data.toString('utf8');
  if (check.kind === 'clearsigned' && !isClearsigned(text)) throw new SignatureMissingError(what, 'it is not a clearsigned (PGP SIGNED MESSAGE) file');
  if (check.kind === 'detached' && (!signature || !signature.length)) throw new SignatureMissingError(what, 'the signature file is missing or empty');
  const dir = await mkdtemp(join(tmpdir(), 'kumo-gpgv-'));
  try {
    const dataFile = join(dir, 'data');
    const sigFile = join(dir, 'data.sig');
    const outFile = join(dir, 'signed');
    await writeFile(dataFile, data, { mode: 0o600 });
    const argv = ['--homedir', dir, '--status-fd', '1', '--keyring', check.keyring];
    if (check.kind === 'detached') {
      await writeFile(sigFile, signature!, { mode: 0o600 });
      argv.push(sigFile, dataFile);
    } else {
      argv.push('--output', outFile, dataFile);
    }
    const r = await run('gpgv', argv, { allowFailure: true, timeoutMs: 60_000, ...(opts.signal ? { signal: opts.signal } : {}) });
    const s = parseStatus(r.stdout);
    if (s.badsig !== undefined) throw new SignatureBadError(what, `BAD signature from key ${s.badsig}`);
    if (r.code === 0 && s.validsig) {
      return { text: check.kind === 'clearsigned' ? await readFile(outFile, 'utf8') : text, fingerprint: s.validsig };
    }
    if (s.errsig) {
      // rc 9: no public key; anything else: a signature gpgv cannot check (unknown algorithm, ...)
      if (s.errsig.rc === '9') throw new SignatureUnknownKeyError(what, check.keyring, s.errsig.keyId);
      throw new SignatureBadError(what, `gpgv cannot check it (error ${s.errsig.rc || 'unknown'} for key ${s.errsig.keyId})`);
    }
    if (s.noData) throw new SignatureMissingError(what, 'no OpenPGP signature in it');
    throw new SignatureBadError(what, r.stderr.trim().split('\n').slice(-1)[0] || `gpgv exited with ${r.code}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
