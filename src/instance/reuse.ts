/**
 * `launch({ reuse: true, name })`: what differs between an existing instance and the spec asked
 * for (a pure comparison of its record with the validated spec), and the typed error that lists it.
 */
import { realpathSync } from 'node:fs';
import type { InstanceSpec } from '../config/spec.js';
import { ConflictError } from '../core/errors.js';
import type { PortForward } from '../driver/driver.js';
import type { InstanceRecord } from './store.js';

/** One field that differs: its name, what the instance has, what was asked for. */
export interface SpecDifference {
  field: string;
  have: string;
  want: string;
}

const show = (v: unknown) => (v === undefined ? '(none)' : typeof v === 'string' ? v : JSON.stringify(v));
const portText = (p: PortForward) => `${p.hostAddr}:${p.hostPort}:${p.guestPort}/${p.proto}`;
const sortedJson = (o: Record<string, unknown> | undefined) => JSON.stringify(Object.entries(o ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** Whether a forward of the instance satisfies a requested one (host port 0 = any free port). */
function portSatisfies(have: PortForward, want: PortForward): boolean {
  return have.proto === want.proto && have.guestPort === want.guestPort && have.hostAddr === want.hostAddr && (want.hostPort === 0 || have.hostPort === want.hostPort);
}

/**
 * Compare what the instance was made with to what is asked for. `userDataDigest` is the digest
 * of the requested user-data (undefined: none). Fields left out of the request take their
 * defaults in the validated spec, so a default is a request too; the disk is compared only when
 * a size is asked for (the instance otherwise has the image's size). Readiness timeout and ttl
 * are not part of what an instance is.
 */
export function specDifferences(rec: InstanceRecord, spec: InstanceSpec, userDataDigest: string | undefined): SpecDifference[] {
  const d: SpecDifference[] = [];
  const cmp = (field: string, have: unknown, want: unknown) => {
    if (have !== want) d.push({ field, have: show(have), want: show(want) });
  };
  cmp('image', rec.image.ref, spec.image);
  cmp('driver', rec.driver, spec.driver);
  cmp('cpus', rec.cpus, spec.cpus);
  cmp('memory', rec.memoryMiB === undefined ? undefined : `${rec.memoryMiB} MiB`, `${spec.memoryMiB} MiB`);
  if (spec.diskBytes !== undefined) cmp('disk', rec.diskBytes, spec.diskBytes);
  cmp('user', rec.ssh.user, spec.user);
  if (spec.sshKey !== undefined) cmp('sshKey', rec.ssh.key, spec.sshKey);
  cmp('accel', rec.accel, spec.accel);
  cmp('firmware', rec.firmware, spec.firmware);
  cmp('seedFormat', rec.seedFormat, spec.seedFormat);
  const unmatched = [...rec.ports];
  const portsOk = spec.ports.length === rec.ports.length && spec.ports.every((w) => {
    const i = unmatched.findIndex((h) => portSatisfies(h, w));
    return i >= 0 && unmatched.splice(i, 1).length === 1;
  });
  if (!portsOk) d.push({ field: 'ports', have: rec.ports.map(portText).join(', ') || '(none)', want: spec.ports.map(portText).join(', ') || '(none)' });
  // user-data: by digest; a record from before digests were kept can only say where it came from
  if (rec.userDataDigest !== undefined || userDataDigest === undefined) {
    if (rec.userDataDigest !== userDataDigest) d.push({ field: 'userData', have: rec.userDataDigest ? `sha256 ${rec.userDataDigest.slice(0, 12)}` : '(none)', want: userDataDigest ? `sha256 ${userDataDigest.slice(0, 12)}` : '(none)' });
  } else if (rec.userDataSource !== (spec.userDataPath ?? '(inline)')) cmp('userData', rec.userDataSource, spec.userDataPath ?? '(inline)');
  if (sortedJson(rec.labels) !== sortedJson(spec.labels)) d.push({ field: 'labels', have: show(rec.labels ?? {}), want: show(spec.labels ?? {}) });
  const mountText = (ms: readonly { host: string; guest: string; readOnly: boolean }[] | undefined) => (ms ?? []).map((m) => `${m.host}:${m.guest}${m.readOnly ? ':ro' : ''}`).join(', ') || '(none)';
  // the host paths as given (the record keeps real paths: a symlinked folder compares by where it points)
  if (mountText(rec.mounts) !== mountText(spec.mounts?.map((m) => ({ ...m, host: realHost(m.host) }))))
    d.push({ field: 'mounts', have: mountText(rec.mounts), want: mountText(spec.mounts) });
  for (const [k, v] of Object.entries(spec.driverOptions ?? {})) {
    const have = rec.driverOptions?.[k];
    if (JSON.stringify(have) !== JSON.stringify(v)) d.push({ field: k, have: show(have), want: show(v) });
  }
  return d;
}

function realHost(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

export class InstanceSpecDiffersError extends ConflictError {
  constructor(name: string, diffs: readonly SpecDifference[]) {
    super('INSTANCE_SPEC_DIFFERS', `instance '${name}' exists with another spec: ${diffs.map((x) => `${x.field} is ${x.have}, asked ${x.want}`).join('; ')}`, {
      hint: `ask for the spec it has, choose another name, or delete it first: kumo delete --force ${name}`,
      details: { instance: name, differences: diffs },
    });
  }
}
