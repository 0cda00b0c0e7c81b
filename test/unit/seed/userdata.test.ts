import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { composeUserData, classifyUserData, seedFiles, validateSeedSpec, kumoCloudConfig, KUMO_MERGE_TYPE, type SeedSpec } from '../../../src/seed/index.js';
import { ValidationError } from '../../../src/core/errors.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1hZGUgdXAga2V5IGZvciB0ZXN0cyBvbmx5IQ== me@host';
const KEY2 = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 other@host';
const kumoPart = () => kumoCloudConfig({ instanceId: 'i-1', hostname: 'vm1', sshAuthorizedKeys: [KEY] });

function cc(text: string): Record<string, any> {
  assert.match(text, /^#cloud-config\n/);
  return parse(text) as Record<string, any>;
}

test("no user-data: kumo's part alone, with its account, key and hostname", () => {
  const out = cc(composeUserData(kumoPart()));
  assert.equal(out.hostname, 'vm1');
  assert.deepEqual(out.users, [{ name: 'kumo', gecos: 'kumo', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: [KEY] }]);
  assert.equal(out.ssh_deletekeys, undefined);
});

test("#cloud-config: the user's lists append to kumo's, the user's scalars win, kumo's account stays", () => {
  const user = [
    '#cloud-config',
    'hostname: mine',
    'packages: [git]',
    'runcmd:',
    '  - echo user',
    'users:',
    '  - default',
    '  - name: alice',
    '    shell: /bin/zsh',
    '  - name: kumo',
    '    shell: /bin/sh',
    '    sudo: false',
    `    ssh_authorized_keys: ["${KEY2}"]`,
    'ssh_keys:',
    '  rsa_public: ssh-rsa AAAA x',
    'write_files:',
    '  - path: /etc/x',
    '    content: hi',
  ].join('\n');
  const base = kumoPart();
  base.runcmd = ['echo kumo'];
  base.ssh_keys = { ed25519_public: 'ssh-ed25519 AAAA y', ed25519_private: 'k' };
  base.write_files = [{ path: '/etc/kumo', content: 'k' }];
  const out = cc(composeUserData(base, user));
  assert.equal(out.hostname, 'mine');
  assert.deepEqual(out.runcmd, ['echo kumo', 'echo user']);
  assert.deepEqual(out.packages, ['git']);
  assert.deepEqual(out.write_files.map((w: any) => w.path), ['/etc/kumo', '/etc/x']);
  assert.deepEqual(Object.keys(out.ssh_keys).sort(), ['ed25519_private', 'ed25519_public', 'rsa_public']);
  const names = out.users.map((u: any) => (typeof u === 'string' ? u : u.name));
  assert.deepEqual(names, ['kumo', 'default', 'alice']);
  const k = out.users[0];
  assert.equal(k.shell, '/bin/sh', "the user's field wins");
  assert.equal(k.sudo, 'ALL=(ALL) NOPASSWD:ALL', "kumo's sudo rule is kept");
  assert.deepEqual(k.ssh_authorized_keys, [KEY, KEY2]);
});

test('an empty #cloud-config document changes nothing', () => {
  assert.deepEqual(cc(composeUserData(kumoPart(), '#cloud-config\n')), cc(composeUserData(kumoPart())));
});

test('a script, an include or a multipart becomes a MIME multipart with kumo\'s part last', () => {
  for (const [text, ct] of [
    ['#!/bin/bash\necho hi\n', 'text/x-shellscript'],
    ['#include\nhttp://example.invalid/cfg\n', 'text/x-include-url'],
    ['#cloud-boothook\necho early\n', 'text/cloud-boothook'],
  ] as const) {
    const out = composeUserData(kumoPart(), text);
    const m = /^Content-Type: multipart\/mixed; boundary="([^"]+)"\nMIME-Version: 1\.0\n\n/.exec(out);
    assert.ok(m, out);
    const parts = out.split(`--${m[1]}`);
    assert.equal(parts.length, 4, 'preamble, two parts, closing');
    assert.match(parts[1]!, new RegExp(`Content-Type: ${ct.replace('/', '\\/')}`));
    assert.ok(parts[1]!.includes(text));
    assert.match(parts[2]!, /Content-Type: text\/cloud-config/);
    assert.ok(parts[2]!.includes(`Merge-Type: ${KUMO_MERGE_TYPE}`));
    assert.ok(parts[2]!.includes('#cloud-config\nhostname: vm1'));
    assert.equal(parts[3], '--\n');
  }
  const mime = 'Content-Type: multipart/mixed; boundary="XYZ"\nMIME-Version: 1.0\n\n--XYZ\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho a\n--XYZ--\n';
  const out = composeUserData(kumoPart(), mime);
  assert.ok(out.includes('Content-Type: multipart/mixed; boundary="XYZ"\n\n--XYZ\nContent-Type: text/x-shellscript'), 'the user\'s multipart is nested as it is');
  assert.equal(classifyUserData(mime).kind, 'mime');
  // deterministic
  assert.equal(composeUserData(kumoPart(), '#!/bin/sh\n'), composeUserData(kumoPart(), '#!/bin/sh\n'));
});

test('invalid YAML is refused with its line and column', () => {
  const text = '#cloud-config\npackages:\n  - git\nruncmd: [a, b\nhostname: x\n';
  assert.throws(
    () => composeUserData(kumoPart(), text, 'my.yaml'),
    (e: unknown) => e instanceof ValidationError && /my\.yaml/.test(e.message) && /line \d+, column \d+/.test(e.message),
  );
  try {
    composeUserData(kumoPart(), '#cloud-config\na: 1\n\tb: 2\n');
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof ValidationError);
    assert.match(e.message, /line 3, column 1/);
  }
  assert.throws(() => composeUserData(kumoPart(), '#cloud-config\na: 1\na: 2\n'), /line 3, column 1.*[Mm]ap keys must be unique/);
  assert.throws(() => composeUserData(kumoPart(), '#cloud-config\n- a\n- b\n'), /not a cloud-config mapping/);
  assert.throws(() => composeUserData(kumoPart(), 'just some text\n'), /not in a format cloud-init understands/);
});

test('host keys go to ssh_keys with ssh_deletekeys false', () => {
  const spec: SeedSpec = {
    instanceId: 'i-2',
    hostKeys: [{ type: 'ed25519', privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----', publicKey: KEY }],
  };
  const out = cc(composeUserData(kumoCloudConfig(spec)));
  assert.equal(out.ssh_deletekeys, false);
  assert.match(out.ssh_keys.ed25519_private, /^-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n$/);
  assert.equal(out.ssh_keys.ed25519_public, KEY);
});

test('NoCloud and ConfigDrive seed files', () => {
  const nc = seedFiles({ instanceId: 'i-3', hostname: 'web.example.org', sshAuthorizedKeys: [KEY], metaData: { foo: 'bar' }, networkConfig: 'version: 2\nethernets: {}\n', vendorData: '#cloud-config\n{}\n' });
  assert.equal(nc.volumeId, 'cidata');
  assert.deepEqual(nc.files.map((f) => f.path), ['user-data', 'meta-data', 'network-config', 'vendor-data']);
  assert.deepEqual(parse(nc.files[1]!.data as string), { foo: 'bar', 'instance-id': 'i-3', 'local-hostname': 'web.example.org' });
  const cd = seedFiles({ format: 'configdrive', instanceId: 'i-4', hostname: 'db', sshAuthorizedKeys: [KEY], networkConfig: '{"links":[],"networks":[]}', vendorData: 'v' });
  assert.equal(cd.volumeId, 'config-2');
  const byPath = new Map(cd.files.map((f) => [f.path, f.data as string]));
  const meta = JSON.parse(byPath.get('openstack/latest/meta_data.json')!);
  assert.equal(meta.uuid, 'i-4');
  assert.equal(meta.hostname, 'db');
  assert.deepEqual(Object.values(meta.public_keys), [KEY]);
  assert.equal(byPath.get('openstack/latest/user_data'), byPath.get('ec2/latest/user-data'));
  const ec2 = JSON.parse(byPath.get('ec2/latest/meta-data.json')!);
  assert.equal(ec2['instance-id'], 'i-4');
  assert.equal(ec2['public-keys']['0']['openssh-key'], KEY);
  assert.deepEqual(JSON.parse(byPath.get('openstack/latest/network_data.json')!), { links: [], networks: [] });
  assert.equal(JSON.parse(byPath.get('openstack/latest/vendor_data.json')!), 'v');
  assert.throws(() => seedFiles({ format: 'configdrive', instanceId: 'i-5', networkConfig: 'version: 2\n' }), /network_data\.json/);
});

test('a bad spec reports every problem at once', () => {
  try {
    validateSeedSpec({ instanceId: 'bad id', hostname: '-x-', user: 'Root', sshAuthorizedKeys: ['not a key'] });
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof ValidationError);
    assert.deepEqual(e.issues.map((i) => i.path), ['instanceId', 'hostname', 'user', 'sshAuthorizedKeys[0]']);
  }
});

test('one classification: user-data content or a path, and what cloud-init would refuse', async () => {
  const { isUserDataContent, userDataProblem } = await import('../../../src/seed/userdata.js');
  assert.ok(isUserDataContent('#cloud-config'));
  assert.ok(isUserDataContent('#!/bin/sh'));
  assert.ok(isUserDataContent('a: b\nc: d'));
  assert.ok(!isUserDataContent('init.yaml'));
  assert.ok(!isUserDataContent('./cloud/#cloud-config.yaml'));
  // the same kinds composeUserData accepts
  for (const text of ['#cloud-config\n{}\n', '#!/bin/sh\necho\n', '#include\nhttp://x\n', '## template: jinja\n#cloud-config\n{}\n'])
    assert.equal(userDataProblem(Buffer.from(text)), undefined, text);
  assert.match(userDataProblem(Buffer.from('\ufeffhello\n'))!, /does not recognise/);
});

test('YAML aliases that cannot be expanded are refused with their position and a hint, not an internal error', () => {
  const cases: [string, RegExp][] = [
    ['#cloud-config\nruncmd: &x [*x]\n', /line 2, column 13: the alias \*x is inside the node it names/],
    ['#cloud-config\nwrite_files:\n  - &f {path: /a, content: *f}\n', /line 3, column 28: the alias \*f is inside the node it names/],
    ['#cloud-config\npackages: [*nope]\n', /line 2, column 12: the alias \*nope names no anchor set before it/],
  ];
  for (const [text, re] of cases) {
    for (const run of [() => composeUserData(kumoPart(), text, 'my.yaml'), () => seedFiles({ instanceId: 'i-1', sshAuthorizedKeys: [KEY], userData: text })]) {
      assert.throws(run, (e: unknown) => {
        assert.ok(e instanceof ValidationError, String(e));
        assert.equal(e.code, 'INVALID');
        assert.match(e.message, re);
        assert.ok(e.hint, 'with a hint');
        return true;
      });
    }
  }
  // A well-formed alias still works.
  const out = cc(composeUserData(kumoPart(), '#cloud-config\nx-pkgs: &p [git]\npackages: *p\n'));
  assert.deepEqual(out.packages, ['git']);
});

test("a '__proto__' key is refused: it can never turn the user-data into something else or drop kumo's user and keys", () => {
  for (const text of ['#cloud-config\n__proto__: [1]\npackages: [git]\n', '#cloud-config\nssh_keys:\n  __proto__: {a: 1}\n', '#cloud-config\nusers:\n  - name: kumo\n    __proto__: {}\n']) {
    assert.throws(() => composeUserData(kumoPart(), text), (e: unknown) => {
      assert.ok(e instanceof ValidationError, String(e));
      assert.match(e.message, /the key '__proto__' is not allowed/);
      assert.ok(e.hint);
      return true;
    });
  }
});

test('host public keys are made 0644 in the guest (cloud-init writes them 0600), before the user\'s commands', () => {
  const spec: SeedSpec = {
    instanceId: 'i-2',
    hostKeys: [{ type: 'ed25519', privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----', publicKey: KEY }],
  };
  const out = cc(composeUserData(kumoCloudConfig(spec), '#cloud-config\nruncmd: [[touch, /x]]\n'));
  assert.deepEqual(out.runcmd, [['chmod', '0644', '/etc/ssh/ssh_host_ed25519_key.pub'], ['touch', '/x']]);
  assert.equal(cc(composeUserData(kumoCloudConfig({ instanceId: 'i-3' }))).runcmd, undefined, 'no host keys, no command');
});
