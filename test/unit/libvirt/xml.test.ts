import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  buildDomainXml,
  buildVolumeXml,
  parseDomainFacts,
  parseKumoMetadata,
  parseXml,
  KUMO_NS,
  type DomainSpec,
} from '../../../src/driver/libvirt/index.js';
import { child, childrenNamed, nsUri, path } from '../../../src/driver/libvirt/xmlparse.js';

const base: DomainSpec = {
  name: 'web-1',
  type: 'qemu',
  cpus: 2,
  memoryMiB: 1024,
  disk: { kind: 'file', path: '/home/u/.local/share/kumo/instances/web-1/disk.qcow2', format: 'qcow2' },
  seed: { kind: 'file', path: '/home/u/.local/share/kumo/instances/web-1/seed.iso', format: 'raw' },
  mac: '52:54:00:AB:cd:01',
  network: { kind: 'user' },
  serialLog: '/home/u/.local/share/kumo/instances/web-1/serial.log',
  metadata: { instance: 'web-1', home: '/home/u/.local/share/kumo', dir: '/home/u/.local/share/kumo/instances/web-1', client: 'box', sshPort: 40022 },
};

/** libvirt's own schema check (virt-xml-validate, from libvirt-clients): an independent reader. */
async function validate(xml: string, kind: 'domain' | 'storagevol'): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kumo-lv-xml-'));
  try {
    const f = join(dir, `${kind}.xml`);
    await writeFile(f, xml);
    const r = spawnSync('virt-xml-validate', [f, kind], { encoding: 'utf8' });
    assert.equal(r.status, 0, `virt-xml-validate rejected the ${kind} XML:\n${r.stdout}${r.stderr}\n${xml}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('domain XML for TCG with files: libvirt schema accepts it and the elements are what kumo asked', async () => {
  const xml = buildDomainXml(base);
  await validate(xml, 'domain');
  const dom = parseXml(xml);
  assert.equal(dom.name, 'domain');
  assert.equal(dom.attrs.type, 'qemu');
  assert.equal(child(dom, 'name')!.text, 'web-1');
  assert.equal(child(dom, 'memory')!.attrs.unit, 'MiB');
  assert.equal(child(dom, 'memory')!.text, '1024');
  assert.equal(child(dom, 'vcpu')!.text, '2');
  assert.equal(path(dom, 'os', 'type')!.attrs.machine, 'q35');
  assert.equal(child(dom, 'cpu')!.attrs.mode, 'maximum');
  const disks = childrenNamed(child(dom, 'devices'), 'disk');
  assert.equal(disks.length, 2);
  const [d0, d1] = disks;
  assert.equal(d0!.attrs.device, 'disk');
  assert.equal(child(d0, 'source')!.attrs.file, base.disk.kind === 'file' ? base.disk.path : '');
  assert.equal(child(d0, 'driver')!.attrs.type, 'qcow2');
  assert.equal(child(d0, 'target')!.attrs.bus, 'virtio');
  assert.equal(d1!.attrs.device, 'disk');
  assert.equal(child(d1, 'target')!.attrs.dev, 'vdb');
  assert.ok(child(d1, 'readonly'), 'the seed is read-only');
  assert.equal(child(d1, 'driver')!.attrs.type, 'raw');
  const nic = path(dom, 'devices', 'interface')!;
  assert.equal(nic.attrs.type, 'user');
  assert.equal(child(nic, 'mac')!.attrs.address, '52:54:00:ab:cd:01');
  assert.equal(child(nic, 'model')!.attrs.type, 'virtio');
  assert.equal(path(dom, 'devices', 'serial', 'source')!.attrs.path, base.serialLog);
  assert.ok(!path(dom, 'devices', 'graphics'), 'no graphics');
  const k = child(dom, 'metadata')!.children[0]!;
  assert.equal(nsUri(k), KUMO_NS);
});

test('KVM, UEFI, a libvirt network and pool volumes', async () => {
  const xml = buildDomainXml({
    ...base,
    type: 'kvm',
    uuid: '1fe8389f-e5c2-44a2-a89a-4b528aa2c548',
    firmware: 'uefi',
    disk: { kind: 'volume', pool: 'default', volume: 'kumo-web-1-disk.qcow2', format: 'qcow2' },
    seed: { kind: 'volume', pool: 'default', volume: 'kumo-web-1-seed.iso', format: 'raw' },
    network: { kind: 'network', name: 'default' },
  });
  await validate(xml, 'domain');
  const f = parseDomainFacts(xml);
  assert.equal(f.type, 'kvm');
  assert.equal(f.uuid, '1fe8389f-e5c2-44a2-a89a-4b528aa2c548');
  assert.deepEqual(f.disks.map((d) => [d.device, d.pool, d.volume]), [
    ['disk', 'default', 'kumo-web-1-disk.qcow2'],
    ['disk', 'default', 'kumo-web-1-seed.iso'],
  ]);
  assert.equal(f.interfaceType, 'network');
  assert.equal(f.networkName, 'default');
  const dom = parseXml(xml);
  assert.equal(child(dom, 'os')!.attrs.firmware, 'efi');
  assert.equal(child(dom, 'cpu')!.attrs.mode, 'host-passthrough');
});

test('metadata round trip, with characters that need escaping', () => {
  const odd = { ...base, metadata: { ...base.metadata, home: `/tmp/a&b "c" <d> 'e'`, dir: `/tmp/a&b "c" <d> 'e'/instances/web-1`, volumes: [{ pool: 'p&1', name: 'kumo-web-1-disk.qcow2' }] } };
  const xml = buildDomainXml(odd);
  const m = parseKumoMetadata(xml);
  assert.deepEqual(m, odd.metadata);
});

test('a domain without kumo metadata, or with another namespace, is not kumo\'s', () => {
  assert.equal(parseKumoMetadata(`<domain type='kvm'><name>x</name></domain>`), undefined);
  assert.equal(parseKumoMetadata(`<domain type='kvm'><name>x</name><metadata><kumo:instance xmlns:kumo="http://example.org/other"><kumo:name>x</kumo:name><kumo:home>/h</kumo:home><kumo:dir>/h/i/x</kumo:dir></kumo:instance></metadata></domain>`), undefined);
  // libvirt may rewrite the prefix; the namespace is what counts.
  const m = parseKumoMetadata(`<domain><name>x</name><metadata><k:instance xmlns:k="${KUMO_NS}"><k:name>x</k:name><k:home>/h</k:home><k:dir>/h/i/x</k:dir></k:instance></metadata></domain>`);
  assert.deepEqual(m, { instance: 'x', home: '/h', dir: '/h/i/x' });
});

test('bad input is refused with every problem named', () => {
  assert.throws(
    () => buildDomainXml({ ...base, name: 'a/b', mac: 'zz', cpus: 0, disk: { kind: 'file', path: 'rel.qcow2', format: 'qcow2' } }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'LIBVIRT_SPEC_INVALID');
      assert.match(e.message, /domain name 'a\/b'/);
      assert.match(e.message, /MAC address 'zz'/);
      assert.match(e.message, /cpus 0/);
      assert.match(e.message, /must be absolute/);
      return true;
    },
  );
});

test('volume XML with a backing store: libvirt schema accepts it', async () => {
  const xml = buildVolumeXml({ name: 'kumo-web-1-disk.qcow2', capacityBytes: 4 * 1024 ** 3, format: 'qcow2', backing: { path: '/var/lib/libvirt/images/kumo-base-ab.qcow2', format: 'qcow2' } });
  await validate(xml, 'storagevol');
  const v = parseXml(xml);
  assert.equal(path(v, 'backingStore', 'path')!.text, '/var/lib/libvirt/images/kumo-base-ab.qcow2');
  assert.equal(path(v, 'target', 'format')!.attrs.type, 'qcow2');
  assert.equal(child(v, 'capacity')!.text, String(4 * 1024 ** 3));
  assert.throws(() => buildVolumeXml({ name: '../x', format: 'qcow2' }), /volume name/);
});

test('the XML reader rejects DTDs and mismatched tags', () => {
  assert.throws(() => parseXml('<!DOCTYPE x [<!ENTITY a "b">]><x/>'), /DTD/);
  assert.throws(() => parseXml('<a><b></a>'), /does not match/);
  assert.equal(parseXml('<?xml version="1.0"?><a x="1&amp;2"><!-- c --><![CDATA[<t>]]></a>').text, '<t>');
});
