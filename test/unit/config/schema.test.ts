// The instance spec's JSON Schema (src/config/schema.ts) against the one validator
// (src/config/spec.ts): the same fields, the same verdict on the same values (checked with a real
// JSON Schema validator, ajv), the shipped file equal to what `kumo schema instance-spec` prints,
// and the documented examples valid under both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { instanceSpecSchema } from '../../../src/config/schema.js';
import { knownFields, loadSpecFile, validateSpec } from '../../../src/config/spec.js';
import { driverOptionTable } from '../../../src/config/driver-options.js';
import { driverNames } from '../../../src/driver/registry.js';
import { ValidationError } from '../../../src/core/errors.js';

const repo = process.env.KUMO_REPO ?? process.cwd();
const Ajv = (createRequire(import.meta.url)('ajv') as { default: typeof AjvClass }).default;
const drivers = driverNames(); // registers the built-in drivers and their option fields
const fields = driverOptionTable();
const schema = instanceSpecSchema({ drivers, driverOptionFields: fields });
const ajv = new Ajv({ strict: true, strictRequired: false, allErrors: true, allowUnionTypes: true });
const check = ajv.compile(schema);

function validatorAccepts(input: Record<string, unknown>): boolean {
  try {
    validateSpec(input, { drivers, requireName: false });
    return true;
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    return false;
  }
}
const schemaAccepts = (input: Record<string, unknown>) => check(input) as boolean;

test('the schema has exactly the fields the validator knows (and $schema)', () => {
  const props = Object.keys(schema.properties as object).sort();
  assert.deepEqual(props, [...knownFields(fields), '$schema'].sort());
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual((schema.properties as Record<string, { enum?: string[] }>).driver!.enum, [...drivers].sort());
});

test('a driver field without a schema entry, or a schema entry for no field, is an error at once', () => {
  assert.throws(() => instanceSpecSchema({ driverOptionFields: { ...fields, other: { colour: { flag: '--colour', check: (v) => v } } } }), /the other driver's spec field 'colour' has no schema entry/);
});

test('the shipped schema/instance-spec.schema.json is what `kumo schema instance-spec` prints', async () => {
  const shipped = await readFile(join(repo, 'schema', 'instance-spec.schema.json'), 'utf8');
  assert.equal(shipped, `${JSON.stringify(schema, null, 2)}\n`, 'regenerate it: node bin/kumo.js schema instance-spec > schema/instance-spec.schema.json');
});

// [field, value, note]: validator and schema must give the same verdict on { field: value }
const SAME: [string, unknown][] = [
  ['name', 'web-1'], ['name', 'a'], ['name', 'x'.repeat(63)], ['name', 'x'.repeat(64)], ['name', 'Web'], ['name', '-web'], ['name', 'web-'], ['name', 'a/b'], ['name', ''], ['name', 3],
  ['image', 'debian-12'], ['image', ''], ['image', '   '], ['image', 12],
  ['cpus', 1], ['cpus', 64], ['cpus', 0], ['cpus', 65], ['cpus', 2.5], ['cpus', '4'], ['cpus', '64'], ['cpus', '65'], ['cpus', '0'], ['cpus', 'four'], ['cpus', true],
  ['memory', 1024], ['memory', 128], ['memory', 127], ['memory', 1048576], ['memory', 1048577], ['memory', '2G'], ['memory', '512m'], ['memory', '1.5GiB'], ['memory', '2 GB'], ['memory', 'lots'], ['memory', '2X'], ['memory', false],
  ['disk', 20], ['disk', '20G'], ['disk', 65536], ['disk', 65537], ['disk', '10 tb'], ['disk', 'big'],
  ['userData', 'init.yaml'], ['userData', ''], ['userData', 5], ['userDataText', '#cloud-config\n'], ['userDataText', 5],
  ['sshKey', '~/.ssh/id_ed25519'], ['sshKey', ''], ['sshKey', 1],
  ['ports', []], ['ports', ['8080:80']], ['ports', ['127.0.0.1:5353:53/udp']], ['ports', ['0.0.0.0:8080:80/tcp']], ['ports', ['localhost:1:65535']], ['ports', ['8080:80/sctp']], ['ports', ['65536:80']], ['ports', ['8080:0']], ['ports', ['0:80']], ['ports', ['8080']], ['ports', ['300.1.1.1:80:80']], ['ports', [80]], ['ports', '8080:80'],
  ['ports', [{ host: 8080, guest: 80 }]], ['ports', [{ hostPort: '8080', guestPort: 80, proto: 'udp', addr: '0.0.0.0' }]], ['ports', [{ host: 8080 }]], ['ports', [{ host: 70000, guest: 80 }]], ['ports', [{ host: 8080, guest: 80, proto: 'sctp' }]],
  ['accel', 'auto'], ['accel', 'kvm'], ['accel', 'tcg'], ['accel', 'fast'], ['accel', 1],
  ['driver', 'qemu'], ['driver', 'libvirt'], ['driver', 'vbox'], ['driver', 'Qemu'], ['driver', 3],
  ['timeout', 600], ['timeout', '90s'], ['timeout', '10m'], ['timeout', '1h'], ['timeout', '500ms'], ['timeout', 0], ['timeout', -5], ['timeout', 86400], ['timeout', 86401], ['timeout', 'soon'], ['timeout', true],
  ['user', 'kumo'], ['user', '_svc'], ['user', 'Kumo'], ['user', 'a'.repeat(33)], ['user', ''],
  ['seedFormat', 'nocloud'], ['seedFormat', 'configdrive'], ['seedFormat', 'iso'],
  ['firmware', 'bios'], ['firmware', 'uefi'], ['firmware', 'coreboot'],
  ['$schema', './instance-spec.schema.json'], ['$schema', 42],
  ['memroy', '2G'], ['colour', 'blue'],
];

test('the schema and the validator give the same verdict on the same values', () => {
  const differ: string[] = [];
  for (const [field, value] of SAME) {
    const input = { [field]: value };
    const v = validatorAccepts(input);
    const s = schemaAccepts(input);
    if (v !== s) differ.push(`${field}: ${JSON.stringify(value)}: validator ${v ? 'accepts' : 'rejects'}, schema ${s ? 'accepts' : 'rejects'}`);
  }
  // every value above is judged the same; some of each kind are accepted and some rejected
  assert.deepEqual(differ, []);
  const verdicts = SAME.map(([f, v]) => validatorAccepts({ [f]: v }));
  assert.ok(verdicts.filter(Boolean).length > 30 && verdicts.filter((x) => !x).length > 30);
});

test("the drivers' fields: the same verdict, and allowed only with their driver", () => {
  const cases: [Record<string, unknown>, boolean][] = [
    [{ driver: 'libvirt', connect: 'qemu:///system', pool: 'default', network: 'network:default' }, true],
    [{ driver: 'libvirt', network: 'user' }, true],
    [{ driver: 'libvirt', network: 'bridge:br0' }, true],
    [{ driver: 'libvirt', network: 'network:' }, false],
    [{ driver: 'libvirt', network: 'bad name' }, false],
    [{ driver: 'libvirt', pool: '-x' }, false],
    [{ driver: 'libvirt', connect: '' }, false],
    [{ connect: 'qemu:///system' }, false], // no driver: qemu
    [{ driver: 'qemu', pool: 'default' }, false],
  ];
  for (const [input, ok] of cases) {
    assert.equal(validatorAccepts(input), ok, `validator: ${JSON.stringify(input)}`);
    assert.equal(schemaAccepts(input), ok, `schema: ${JSON.stringify(input)}`);
  }
});

test('what only the validator checks (the schema accepts these; kumo refuses them)', () => {
  // a size written as text against its range; a URI that would run a program
  for (const input of [{ memory: '64K' }, { disk: '100T' }, { timeout: '2000h' }, { driver: 'libvirt', connect: 'qemu+ext:///system?command=/bin/sh' }, { userData: 'a', userDataText: '#cloud-config\n' }]) {
    assert.equal(schemaAccepts(input), true, JSON.stringify(input));
    assert.equal(validatorAccepts(input), false, JSON.stringify(input));
  }
});

test('an unknown field: the validator says did-you-mean and lists the known fields; the schema refuses it too', () => {
  try {
    validateSpec({ name: 'web', memroy: '2G', imgae: 'debian-12' });
    assert.fail('expected a ValidationError');
  } catch (e) {
    assert.ok(e instanceof ValidationError);
    const byPath = Object.fromEntries(e.issues.map((i) => [i.path, i]));
    assert.match(byPath.memroy!.message, /is not a known field; did you mean 'memory'\?/);
    assert.match(byPath.imgae!.message, /did you mean 'image'\?/);
    assert.match(byPath.memroy!.hint!, /known fields: .*memory/);
  }
  assert.equal(schemaAccepts({ memroy: '2G' }), false);
  assert.ok(check.errors?.some((x: ErrorObject) => x.keyword === 'additionalProperties' && (x.params as { additionalProperty?: string }).additionalProperty === 'memroy'), JSON.stringify(check.errors));
});

test('the spec file example of docs/instances.md, and spec files naming their schema ($schema in JSON, a yaml-language-server comment in YAML), pass both', async () => {
  const doc = await readFile(join(repo, 'docs', 'instances.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Spec files'));
  const blocks = [...section.matchAll(/```(yaml|json)\n([\s\S]*?)```/g)].slice(0, 3);
  assert.ok(blocks.length >= 2, 'docs/instances.md: a yaml and a json example under "## Spec files"');
  const dir = await mkdtemp(join(tmpdir(), 'kumo-schema-'));
  try {
    for (const [i, [, lang, text]] of blocks.entries()) {
      const file = join(dir, `spec-${i}.${lang}`);
      await writeFile(file, text!);
      const parsed = (lang === 'json' ? JSON.parse(text!) : parseYaml(text!)) as Record<string, unknown>;
      assert.equal(schemaAccepts(parsed), true, `${lang} example ${i}: ${JSON.stringify(check.errors)}`);
      const loaded = await loadSpecFile(file);
      const spec = validateSpec(loaded, { drivers });
      assert.ok(spec.name, `${lang} example ${i}`);
    }
    assert.ok(blocks.some(([, lang, text]) => lang === 'json' && /"\$schema"/.test(text!)), 'a JSON example with "$schema"');
    assert.ok(blocks.some(([, lang, text]) => lang === 'yaml' && /^# yaml-language-server: \$schema=/m.test(text!)), 'a YAML example with the yaml-language-server comment');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
