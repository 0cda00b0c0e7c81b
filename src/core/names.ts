/**
 * The patterns of names users give: instance names (they become host names and folder names),
 * guest user names, OpenSSH public key lines. One home for each; validators build their messages
 * on these.
 */
import { ValidationError, type ValidationIssue } from './errors.js';

/** An instance name: 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit. */
export const INSTANCE_NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
export const INSTANCE_NAME_MAX = 63;
export const NAME_HINT = "use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit (it becomes the hostname)";

/** Whether `s` is a valid instance name. */
export function isInstanceName(s: string): boolean {
  return s.length <= INSTANCE_NAME_MAX && INSTANCE_NAME_RE.test(s);
}

/** Problems with an instance name, or [] when it is valid. */
export function nameIssues(name: unknown, path = 'name'): ValidationIssue[] {
  if (typeof name !== 'string') return [{ path, message: 'must be a string', hint: NAME_HINT }];
  if (name === '') return [{ path, message: 'is empty', hint: NAME_HINT }];
  if (name.length > INSTANCE_NAME_MAX) return [{ path, message: `is ${name.length} characters long (at most ${INSTANCE_NAME_MAX})`, hint: NAME_HINT }];
  if (name.includes('/') || name === '.' || name === '..') return [{ path, message: `'${name}' is not a valid name: it would name another folder`, hint: NAME_HINT }];
  if (!INSTANCE_NAME_RE.test(name)) {
    const bad = [...name].find((c) => !/[a-z0-9-]/.test(c));
    const why = bad !== undefined ? `contains '${bad === '\n' ? '\\n' : bad}'` : 'starts or ends with \'-\'';
    return [{ path, message: `'${name}' is not a valid name: it ${why}`, hint: NAME_HINT }];
  }
  return [];
}

/** Throw a ValidationError when the instance name is invalid. */
export function assertValidName(name: unknown): asserts name is string {
  const issues = nameIssues(name);
  if (issues.length) throw new ValidationError('instance name', issues);
}

/** A guest user name (useradd's portable rule): lower-case letters, digits, '_' and '-', up to 32. */
export const USER_NAME_RE = /^[a-z_][a-z0-9_-]{0,31}$/;

/** One OpenSSH public key line: type, base64 blob, optional comment. */
export const SSH_PUBLIC_KEY_RE = /^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;
