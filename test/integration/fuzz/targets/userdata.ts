/**
 * Fuzz target: the user-data merger (src/seed/userdata.ts composeUserData) on random cloud-config
 * documents (made from random mappings of cloud-init's keys, sometimes damaged: aliases, anchors,
 * tags, `__proto__`, tabs, cut lines) and on other kinds of user-data (scripts, #include, MIME).
 * Properties of a result: a cloud-config result parses as one YAML mapping and still holds kumo's
 * user with kumo's key (and its host keys); a MIME result still carries kumo's part.
 */
import { parse, stringify } from 'yaml';
import { composeUserData, kumoCloudConfig } from '../../../../src/seed/index.js';
import { FuzzPropertyError, int, pick, wildNumber, wildString, type FuzzTarget, type Rng } from '../harness.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1hZGUgdXAga2V5IGZvciB0ZXN0cyBvbmx5IQ== me@host';
const KEYS = ['users', 'groups', 'runcmd', 'bootcmd', 'write_files', 'packages', 'ssh_authorized_keys', 'ssh_keys', 'hostname', 'ssh_deletekeys', 'package_update', 'snap', 'merge_how', '__proto__', 'constructor', 'toString', 'name', 'sudo', '0', ''];

function value(r: Rng, depth = 0): unknown {
  switch (int(r, depth > 3 ? 5 : 8)) {
    case 0:
      return wildNumber(r);
    case 1:
      return wildString(r, 20);
    case 2:
      return pick(r, [true, false, null, 'default', 'kumo', KEY, 'ALL=(ALL) NOPASSWD:ALL', '']);
    case 3:
      return { name: pick(r, ['kumo', 'alice', 'default', '', 7]), sudo: pick(r, [false, '', null, 'ALL=(ALL) ALL']), ssh_authorized_keys: pick(r, [[KEY], ['ssh-rsa AAA x'], 'ssh-rsa AAA y', null]) };
    case 4:
      return 'x'.repeat(int(r, 200));
    case 5:
      return Array.from({ length: int(r, 5) }, () => value(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = int(r, 5); i > 0; i--) {
        const k = pick(r, KEYS);
        if (k === '__proto__') Object.defineProperty(o, k, { value: value(r, depth + 1), enumerable: true, configurable: true, writable: true });
        else o[k] = value(r, depth + 1);
      }
      return o;
    }
  }
}

function cloudConfig(r: Rng): string {
  const o: Record<string, unknown> = {};
  for (let i = int(r, 7); i > 0; i--) {
    const k = pick(r, KEYS);
    if (k === '__proto__') Object.defineProperty(o, k, { value: value(r), enumerable: true, configurable: true, writable: true });
    else o[k] = value(r);
  }
  let text = '#cloud-config\n' + stringify(o);
  switch (int(r, 8)) {
    case 0: {
      const at = int(r, text.length + 1);
      text = text.slice(0, at) + pick(r, ['&a ', '*a', '*b', '!!binary ', '!!set ', '\t', ':', '- ', '{', '[', '"', '\n  ', '<<: *a\n', '? ']) + text.slice(at);
      break;
    }
    case 1:
      text += pick(r, ['x: &a [1, *a]\n', 'x: &a {b: *a}\n', 'y: *nope\n', 'a: &a [1]\nb: *a\n', '<<: {users: [bob]}\n', 'users: !!str 5\n', 'k: !custom 1\n', '---\nsecond: doc\n']);
      break;
    case 2:
      text = text.slice(0, int(r, text.length + 1));
      break;
    default:
  }
  return text;
}

function other(r: Rng): string {
  return pick(r, [
    '#!/bin/sh\necho hi\n',
    '#include\nhttp://127.0.0.1/x\n',
    '#cloud-boothook\n' + wildString(r),
    'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\ntrue\n--b--\n',
    'Content-Type: multipart/mixed; boundary="' + wildString(r, 6) + '"\n\n' + wildString(r),
    wildString(r, 60),
    '',
    '\n\n',
    '\ufeff#cloud-config\nhostname: h\n',
    '## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n',
  ]);
}

const target: FuzzTarget = {
  cases: 2500,
  longCases: 20000,
  async run(r) {
    const text = r() < 0.8 ? cloudConfig(r) : other(r);
    const kumo = kumoCloudConfig({ instanceId: 'i-1', hostname: 'vm1', sshAuthorizedKeys: [KEY] });
    const out = composeUserData(kumo, text);
    if (out.startsWith('#cloud-config\n')) {
      const doc = parse(out) as Record<string, unknown>;
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new FuzzPropertyError('the merged user-data is not a mapping');
      const users = doc.users;
      if (!Array.isArray(users)) throw new FuzzPropertyError(`the merged user-data has no users list: ${JSON.stringify(users)}`);
      const mine = users.find((u) => u && typeof u === 'object' && (u as { name?: unknown }).name === 'kumo') as { ssh_authorized_keys?: unknown; sudo?: unknown } | undefined;
      if (!mine) throw new FuzzPropertyError("kumo's user is gone from the merged user-data");
      if (!Array.isArray(mine.ssh_authorized_keys) || !mine.ssh_authorized_keys.includes(KEY)) throw new FuzzPropertyError("kumo's key is gone from kumo's user");
      if (typeof mine.sudo !== 'string' || !mine.sudo) throw new FuzzPropertyError(`kumo's user lost its sudo rule: ${JSON.stringify(mine.sudo)}`);
      if (Object.getPrototypeOf(doc) !== Object.prototype) throw new FuzzPropertyError('the merged document has another prototype');
      return 'merged';
    }
    if (!out.includes('kumo.cfg') || !out.includes(KEY)) throw new FuzzPropertyError("the MIME user-data lost kumo's part");
    return 'mime';
  },
};
export default target;
