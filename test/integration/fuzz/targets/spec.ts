/**
 * Fuzz target: the instance spec, loaded (loadSpecFile, from random YAML text) and validated
 * (validateSpec, from random objects of known and unknown fields holding awkward values: wild
 * numbers and strings, lists, nested mappings, `__proto__`, port objects).
 * Properties of an accepted spec: the name is a valid instance name, cpus and memory are in
 * range, ports have numbers in 1-65535, and the input object was not modified.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { registerBuiltins } from '../../../../src/builtins.js';
import { LIMITS, loadSpecFile, validateSpec } from '../../../../src/config/spec.js';
import { FuzzPropertyError, int, pick, wildNumber, wildString, type FuzzTarget, type Rng } from '../harness.js';

const FIELDS = ['name', 'image', 'cpus', 'memory', 'disk', 'userData', 'userDataText', 'sshKey', 'ports', 'accel', 'driver', 'timeout', 'user', 'seedFormat', 'firmware', 'connect', 'pool', 'network', 'nmae', '__proto__', 'constructor', ''];

function value(r: Rng, depth = 0): unknown {
  switch (int(r, depth > 2 ? 7 : 10)) {
    case 0:
      return wildNumber(r);
    case 1:
      return wildString(r);
    case 2:
      return pick(r, ['web', 'a', 'debian-12', '2G', '512M', '1T', '0', '-1', '8080:80', '127.0.0.1:5353:53/udp', 'tcg', 'kvm', 'auto', 'qemu', 'libvirt', 'nocloud', 'configdrive', 'bios', 'uefi', '90s', '10m', '1e3', '0x10', ' 2 ', 'qemu:///session', 'qemu+ext:///system?command=/bin/true', 'qemu:///system?no_verify=1', 'user', 'network:default', 'bridge:br0', '#cloud-config\nhostname: x\n', '/nonexistent/key']);
    case 3:
      return pick(r, [true, false, null, undefined]);
    case 4:
      return `${wildNumber(r)}${pick(r, ['', 'G', 'M', 'K', 'T', 'GiB', 'MB', 'ms', 's', 'm', 'h', 'x', ' '])}`;
    case 5:
      return 'x'.repeat(int(r, 300));
    case 6:
      return { hostPort: value(r, depth + 1), guestPort: value(r, depth + 1), proto: pick(r, ['tcp', 'udp', 'sctp', 1]), hostAddr: pick(r, ['127.0.0.1', '0.0.0.0', '::1', '1.2.3.4.5', 'x,guestfwd=tcp:10.0.2.100:1-cmd:/bin/sh']) };
    case 7:
      return Array.from({ length: int(r, 5) }, () => value(r, depth + 1));
    case 8: {
      const o: Record<string, unknown> = {};
      for (let i = int(r, 4); i > 0; i--) o[pick(r, FIELDS)] = value(r, depth + 1);
      return o;
    }
    default:
      return Object.assign(Object.create(null), { a: value(r, depth + 1) });
  }
}

function specObject(r: Rng): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = int(r, 9); i > 0; i--) {
    const k = pick(r, FIELDS);
    if (k === '__proto__') Object.defineProperty(o, k, { value: value(r), enumerable: true, configurable: true, writable: true });
    else o[k] = value(r);
  }
  if (r() < 0.7) o.name = pick(r, ['web', 'db-1', 'x', wildString(r, 10)]);
  return o;
}

interface Ctx {
  dir: string;
}

const target: FuzzTarget<Ctx> = {
  cases: 3000,
  longCases: 20000,
  async setup() {
    registerBuiltins();
    return { dir: await mkdtemp(join(tmpdir(), 'kumo-fuzz-spec-')) };
  },
  async teardown(ctx) {
    await rm(ctx.dir, { recursive: true, force: true });
  },
  async run(r, ctx, i) {
    let input: Record<string, unknown>;
    if (r() < 0.3) {
      // through a file: YAML made from a random object, sometimes damaged
      let text = stringify(specObject(r));
      if (r() < 0.4) {
        const at = int(r, text.length + 1);
        text = text.slice(0, at) + wildString(r, 8) + text.slice(at + int(r, 5));
      }
      if (r() < 0.05) text = pick(r, ['', '- a\n- b\n', '42\n', '&a [*a]\n', 'a: &x\n  b: *x\n', '? [a]\n: 1\n', '!!binary AAAA\n', 'a: !!js/function "x"\n']);
      const path = join(ctx.dir, `spec-${i % 4}.yaml`);
      await writeFile(path, text);
      input = (await loadSpecFile(path)) as Record<string, unknown>;
    } else {
      input = specObject(r);
    }
    const before = JSON.stringify(input);
    const spec = validateSpec(input, { cwd: ctx.dir, drivers: ['qemu', 'libvirt'], requireName: r() < 0.8 });
    if (JSON.stringify(input) !== before) throw new FuzzPropertyError('validateSpec modified its input');
    if (spec.name !== '' && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(spec.name)) throw new FuzzPropertyError(`accepted the name ${JSON.stringify(spec.name)}`);
    if (!Number.isInteger(spec.cpus) || spec.cpus < LIMITS.cpusMin || spec.cpus > LIMITS.cpusMax) throw new FuzzPropertyError(`accepted cpus ${spec.cpus}`);
    if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < LIMITS.memoryMinMiB || spec.memoryMiB > LIMITS.memoryMaxMiB) throw new FuzzPropertyError(`accepted memory ${spec.memoryMiB} MiB`);
    for (const p of spec.ports) {
      for (const n of [p.hostPort, p.guestPort]) if (!Number.isInteger(n) || n < 1 || n > 65535) throw new FuzzPropertyError(`accepted the port ${JSON.stringify(p)}`);
      if (/[,=]/.test(p.hostAddr)) throw new FuzzPropertyError(`accepted the host address ${JSON.stringify(p.hostAddr)}`);
    }
    return 'accepted';
  },
};
export default target;
