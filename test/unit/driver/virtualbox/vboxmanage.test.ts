/**
 * The VirtualBox driver's VBoxManage argv builders, checked against the synopses of the VirtualBox
 * manual's VBoxManage chapter (each synopsis below is quoted from it, trimmed to the options kumo
 * uses; https://docs.oracle.com/en/virtualization/virtualbox/6.0/user/vboxmanage-<command>.html
 * and https://www.virtualbox.org/manual/ch08.html), its output parsers against real outputs
 * published in public projects' test fixtures (source URL at each), and the error mapping against
 * real VBoxManage error texts (source URL at each).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as vb from '../../../../src/driver/virtualbox/vboxmanage.js';
import { convertToVdiArgv, mediumKey } from '../../../../src/driver/virtualbox/media.js';
import { isKumoError } from '../../../../src/core/errors.js';

const VM = '0b0a1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';

/**
 * Synopses (manual, VBoxManage chapter): the sub-command words and every option kumo may pass,
 * with how many values each takes. `check` parses an argv against one and fails on an unknown
 * option, a missing value or a positional argument the synopsis does not have.
 */
const SYNOPSIS: Record<string, { words: string[]; positional: number; options: Record<string, number> }> = {
  // VBoxManage createvm --name <name> [--groups ...] [--ostype <ostype>] [--register] [--basefolder <path>] [--uuid <uuid>]
  createvm: { words: [], positional: 0, options: { '--name': 1, '--ostype': 1, '--register': 0, '--basefolder': 1, '--uuid': 1 } },
  // VBoxManage storagectl <uuid|vmname> --name <name> [--add ide|sata|scsi|floppy|sas|usb|pcie] [--controller LSILogic|...|IntelAhci|PIIX3|PIIX4|ICH6|I82078|...] [--portcount <1-n>] [--hostiocache on|off] [--bootable on|off]
  storagectl: { words: [], positional: 1, options: { '--name': 1, '--add': 1, '--controller': 1, '--portcount': 1, '--hostiocache': 1, '--bootable': 1 } },
  // VBoxManage modifyvm <uuid|vmname> [--ostype] [--memory <memorysize in MB>] [--vram <vramsize in MB>] [--acpi on|off] [--ioapic on|off] [--cpus <number>] [--rtcuseutc on|off]
  //   [--firmware bios|efi|efi32|efi64] [--boot<1-4> none|floppy|dvd|disk|net] [--nic<1-N> none|null|nat|bridged|intnet|hostonly|generic|natnetwork]
  //   [--nictype<1-N> Am79C970A|Am79C973|82540EM|82543GC|82545EM|virtio] [--cableconnected<1-N> on|off] [--macaddress<1-N> auto|<mac>]
  //   [--natpf<1-N> [<rulename>],tcp|udp,[<hostip>],<hostport>,[<guestip>],<guestport>] [--natpf<1-N> delete <rulename>] [--natdnshostresolver<1-N> on|off]
  //   [--uart<1-N> off|<I/O base> <IRQ>] [--uartmode<1-N> disconnected|server <pipe>|client <pipe>|tcpserver <port>|tcpclient <hostname:port>|file <file>|<devicename>]
  //   [--vrde on|off] [--vrdeport <port>] [--vrdeaddress <hostip>]
  modifyvm: {
    words: [],
    positional: 1,
    options: {
      '--cpus': 1, '--memory': 1, '--vram': 1, '--acpi': 1, '--ioapic': 1, '--rtcuseutc': 1, '--firmware': 1,
      '--boot1': 1, '--boot2': 1, '--boot3': 1, '--boot4': 1, '--nic1': 1, '--nictype1': 1, '--cableconnected1': 1, '--macaddress1': 1,
      '--natdnshostresolver1': 1, '--natpf1': 1, '--uart1': 2, '--uartmode1': 2, '--vrde': 1, '--vrdeport': 1, '--vrdeaddress': 1,
    },
  },
  // VBoxManage storageattach <uuid|vmname> --storagectl <name> [--port <number>] [--device <number>] [--type dvddrive|hdd|fdd]
  //   [--medium none|emptydrive|additions|<uuid>|<filename>|host:<drive>|iscsi] [--mtype normal|writethrough|immutable|shareable|readonly|multiattach]
  storageattach: { words: [], positional: 1, options: { '--storagectl': 1, '--port': 1, '--device': 1, '--type': 1, '--medium': 1, '--mtype': 1 } },
  // VBoxManage modifymedium [disk|dvd|floppy] <uuid|filename> [--type normal|writethrough|immutable|shareable|readonly|multiattach] [--resize <megabytes>]
  modifymedium: { words: ['disk'], positional: 1, options: { '--type': 1, '--resize': 1 } },
  // VBoxManage closemedium [disk|dvd|floppy] <uuid|filename> [--delete]
  closemedium: { words: [], positional: 2, options: { '--delete': 0 } },
  // VBoxManage startvm <uuid|vmname>... [--type gui|sdl|headless|separate]
  startvm: { words: [], positional: 1, options: { '--type': 1 } },
  // VBoxManage discardstate <uuid|vmname>
  discardstate: { words: [], positional: 1, options: {} },
  // VBoxManage showvminfo <uuid|vmname> [--details] [--machinereadable]
  showvminfo: { words: [], positional: 1, options: { '--machinereadable': 0 } },
  // VBoxManage list [--long|-l] [--sorted|-s] vms|...|hdds|...
  list: { words: [], positional: 1, options: {} },
  // VBoxManage snapshot <uuid|vmname> take <snapshot-name> [--description=<description>] [--live] | restore <snapshot-name> | delete <snapshot-name>
  snapshot: { words: [], positional: 3, options: { '--live': 0 } },
  // VBoxManage clonevm <uuid|vmname> [--snapshot <uuid>|<name>] [--mode machine|machineandchildren|all] [--options link|keepallmacs|...] [--name <name>] [--groups ...] [--basefolder <basefolder>] [--uuid <uuid>] [--register]
  clonevm: { words: [], positional: 1, options: { '--mode': 1, '--name': 1, '--uuid': 1, '--basefolder': 1, '--register': 0 } },
  // VBoxManage unregistervm <uuid|vmname> [--delete]
  unregistervm: { words: [], positional: 1, options: { '--delete': 0 } },
};

function check(argv: string[]): void {
  const [cmd, ...rest] = argv;
  const syn = SYNOPSIS[cmd!];
  assert.ok(syn, `no synopsis for ${cmd}`);
  let pos = 0;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a.startsWith('--')) {
      assert.ok(a in syn.options, `${cmd}: '${a}' is not in the manual's synopsis`);
      const n = syn.options[a]!;
      for (let k = 1; k <= n; k++) assert.ok(rest[i + k] !== undefined && !rest[i + k]!.startsWith('--'), `${cmd} ${a}: value ${k} missing`);
      i += n;
    } else pos++;
  }
  assert.equal(pos, syn.positional + syn.words.length, `${cmd}: ${pos} positional arguments (${rest.join(' ')})`);
}

const CONFIG: vb.VmConfig = {
  name: 'kumo-i-web-0123456789ab',
  uuid: VM,
  baseFolder: '/home/u/.local/share/kumo/instances/web/vbox',
  ostype: 'Linux_64',
  cpus: 2,
  memoryMiB: 2048,
  vramMiB: 16,
  firmware: 'bios',
  mac: '52:54:00:ab:cd:ef',
  serialLog: '/home/u/.local/share/kumo/instances/web/serial.log',
};

test('createvm: name, uuid, ostype, basefolder under the instance folder, registered', () => {
  const a = vb.createVmArgv(CONFIG);
  check(a);
  assert.deepEqual(a, ['createvm', '--name', 'kumo-i-web-0123456789ab', '--uuid', VM, '--ostype', 'Linux_64', '--basefolder', '/home/u/.local/share/kumo/instances/web/vbox', '--register']);
  assert.equal(vb.vmName('i-web-0123456789ab'), 'kumo-i-web-0123456789ab');
});

test('storagectl: SATA (AHCI) for the disk, IDE (PIIX4) for the seed', () => {
  const s = vb.storageCtlArgv(VM, 'sata');
  const i = vb.storageCtlArgv(VM, 'ide');
  check(s);
  check(i);
  assert.deepEqual(s.slice(0, 6), ['storagectl', VM, '--name', 'SATA', '--add', 'sata']);
  assert.equal(s[s.indexOf('--controller') + 1], 'IntelAhci');
  assert.deepEqual(i.slice(0, 8), ['storagectl', VM, '--name', 'IDE', '--add', 'ide', '--controller', 'PIIX4']);
});

test('modifyvm: shape, NAT virtio NIC with the host resolver, firmware, serial to a file, no VRDE by default', () => {
  const a = vb.modifyVmArgv(VM, CONFIG);
  check(a);
  const val = (k: string) => a[a.indexOf(k) + 1];
  assert.equal(val('--cpus'), '2');
  assert.equal(val('--memory'), '2048');
  assert.equal(val('--vram'), '16');
  assert.equal(val('--acpi'), 'on');
  assert.equal(val('--ioapic'), 'on');
  assert.equal(val('--firmware'), 'bios');
  assert.equal(val('--nic1'), 'nat');
  assert.equal(val('--nictype1'), 'virtio');
  assert.equal(val('--natdnshostresolver1'), 'on');
  assert.equal(val('--macaddress1'), '525400ABCDEF');
  assert.deepEqual(a.slice(a.indexOf('--uart1'), a.indexOf('--uart1') + 3), ['--uart1', '0x3F8', '4']);
  assert.deepEqual(a.slice(a.indexOf('--uartmode1'), a.indexOf('--uartmode1') + 3), ['--uartmode1', 'file', CONFIG.serialLog]);
  assert.equal(val('--vrde'), 'off');
  assert.ok(!a.includes('--vrdeaddress') && !a.includes('--vrdeport'));
  assert.equal(vb.modifyVmArgv(VM, { ...CONFIG, firmware: 'uefi' })[a.indexOf('--firmware') + 1], 'efi');
});

test('modifyvm: VRDE only when asked, and then on 127.0.0.1 only', () => {
  const a = vb.modifyVmArgv(VM, { ...CONFIG, vrde: { port: 5901 } });
  check(a);
  assert.deepEqual(a.slice(a.indexOf('--vrde'), a.indexOf('--vrde') + 6), ['--vrde', 'on', '--vrdeaddress', '127.0.0.1', '--vrdeport', '5901']);
  assert.throws(() => vb.modifyVmArgv(VM, { ...CONFIG, vrde: { port: 70000 } }), (e: unknown) => isKumoError(e) && e.code === 'VBOX_SPEC_INVALID');
});

test('modifyvm refuses a bad shape or MAC with a typed error', () => {
  for (const bad of [{ cpus: 0 }, { memoryMiB: 1.5 }, { mac: 'nope' }]) {
    assert.throws(() => vb.modifyVmArgv(VM, { ...CONFIG, ...bad }), (e: unknown) => isKumoError(e) && e.code === 'VBOX_SPEC_INVALID' && !!e.hint);
  }
});

test('natpf: rules on 127.0.0.1 in the documented six-field form, added and deleted stopped and live', () => {
  const ssh = vb.natRule(vb.SSH_RULE, vb.sshForward(2222));
  assert.equal(ssh, 'kumo-ssh,tcp,127.0.0.1,2222,,22');
  const web = { proto: 'udp' as const, hostAddr: '127.0.0.1', hostPort: 5353, guestPort: 53 };
  assert.equal(vb.ruleName(web), 'kumo-udp-5353');
  assert.equal(vb.natRule(vb.ruleName(web), web), 'kumo-udp-5353,udp,127.0.0.1,5353,,53');
  const add = vb.natpfAddArgv(VM, [ssh, 'x,tcp,127.0.0.1,8080,,80']);
  check(add);
  assert.deepEqual(add, ['modifyvm', VM, '--natpf1', ssh, '--natpf1', 'x,tcp,127.0.0.1,8080,,80']);
  // modifyvm --natpf<1-N> delete <rulename>: 'delete' and the name are the option's two words
  assert.deepEqual(vb.natpfDeleteArgv(VM, 'kumo-ssh'), ['modifyvm', VM, '--natpf1', 'delete', 'kumo-ssh']);
  // controlvm <uuid|vmname> natpf<1-N> [<rulename>],tcp|udp,[<hostip>],<hostport>,[<guestip>],<guestport> | natpf<1-N> delete <rulename>
  assert.deepEqual(vb.natpfLiveAddArgv(VM, ssh), ['controlvm', VM, 'natpf1', ssh]);
  assert.deepEqual(vb.natpfLiveDeleteArgv(VM, 'kumo-ssh'), ['controlvm', VM, 'natpf1', 'delete', 'kumo-ssh']);
  for (const bad of [{ ...web, hostPort: 0 }, { ...web, guestPort: 65536 }, { ...web, hostAddr: '127.0.0.1,evil' }]) assert.throws(() => vb.natRule('r', bad), (e: unknown) => isKumoError(e) && e.code === 'VBOX_SPEC_INVALID');
  assert.throws(() => vb.natRule('a,b', web), (e: unknown) => isKumoError(e) && e.code === 'VBOX_SPEC_INVALID');
});

test('storageattach: the base as multiattach on SATA 0:0, the seed in the IDE DVD drive, detach with --medium none', () => {
  const d = vb.attachDiskArgv(VM, '/k/drivers/virtualbox/media/abc.vdi');
  check(d);
  assert.deepEqual(d, ['storageattach', VM, '--storagectl', 'SATA', '--port', '0', '--device', '0', '--type', 'hdd', '--medium', '/k/drivers/virtualbox/media/abc.vdi', '--mtype', 'multiattach']);
  const s = vb.attachSeedArgv(VM, '/k/instances/web/seed.iso');
  check(s);
  assert.deepEqual(s, ['storageattach', VM, '--storagectl', 'IDE', '--port', '0', '--device', '0', '--type', 'dvddrive', '--medium', '/k/instances/web/seed.iso']);
  for (const c of ['sata', 'ide'] as const) {
    const x = vb.detachArgv(VM, c);
    check(x);
    assert.equal(x[x.indexOf('--medium') + 1], 'none');
  }
});

test('media: multiattach, resize in MiB, closemedium; qemu-img converts to VDI; the key changes with the image', () => {
  for (const a of [vb.multiattachArgv('/m/a.vdi'), vb.resizeArgv('1c182745-4b09-41a1-a147-d3ced46f72f6', 20480), vb.closeMediumArgv('dvd', '/i/seed.iso'), vb.closeMediumArgv('disk', '/m/a.vdi', true)]) check(a);
  assert.deepEqual(vb.multiattachArgv('/m/a.vdi'), ['modifymedium', 'disk', '/m/a.vdi', '--type', 'multiattach']);
  assert.deepEqual(vb.resizeArgv('u', 20480), ['modifymedium', 'disk', 'u', '--resize', '20480']);
  assert.deepEqual(convertToVdiArgv('/img/base.qcow2', 'qcow2', '/m/x.vdi'), ['convert', '-f', 'qcow2', '-O', 'vdi', '/img/base.qcow2', '/m/x.vdi']);
  assert.notEqual(mediumKey('/img/a', 1, 2), mediumKey('/img/a', 1, 3));
  assert.equal(mediumKey('/img/a', 1, 2), mediumKey('/img/a', 1, 2.4));
});

test('lifecycle: startvm headless, acpipowerbutton, poweroff, savestate, discardstate, snapshots, clonevm, unregistervm --delete', () => {
  const all = [
    vb.startVmArgv(VM),
    vb.discardStateArgv(VM),
    vb.showVmInfoArgv(VM),
    vb.listVmsArgv(),
    vb.listHddsArgv(),
    vb.snapshotTakeArgv(VM, 'before', false),
    vb.snapshotTakeArgv(VM, 'before', true),
    vb.snapshotRestoreArgv(VM, 'before'),
    vb.snapshotDeleteArgv(VM, 'before'),
    vb.cloneVmArgv(VM, { name: 'kumo-i-b-1', uuid: 'u2', baseFolder: '/k/instances/b/vbox' }),
    vb.unregisterVmArgv(VM),
  ];
  for (const a of all) check(a);
  assert.deepEqual(vb.startVmArgv(VM), ['startvm', VM, '--type', 'headless']);
  // controlvm <uuid|vmname> pause|resume|reset|poweroff|savestate|acpipowerbutton|...
  assert.deepEqual(vb.acpiPowerButtonArgv(VM), ['controlvm', VM, 'acpipowerbutton']);
  assert.deepEqual(vb.powerOffArgv(VM), ['controlvm', VM, 'poweroff']);
  assert.deepEqual(vb.saveStateArgv(VM), ['controlvm', VM, 'savestate']);
  assert.deepEqual(vb.showVmInfoArgv(VM), ['showvminfo', VM, '--machinereadable']);
  assert.deepEqual(vb.snapshotTakeArgv(VM, 'b', true), ['snapshot', VM, 'take', 'b', '--live']);
  assert.deepEqual(vb.snapshotRestoreArgv(VM, 'b'), ['snapshot', VM, 'restore', 'b']);
  assert.deepEqual(vb.snapshotDeleteArgv(VM, 'b'), ['snapshot', VM, 'delete', 'b']);
  assert.deepEqual(vb.cloneVmArgv(VM, { name: 'n', uuid: 'u', baseFolder: '/b' }), ['clonevm', VM, '--mode', 'machine', '--name', 'n', '--uuid', 'u', '--basefolder', '/b', '--register']);
  assert.deepEqual(vb.unregisterVmArgv(VM), ['unregistervm', VM, '--delete']);
});

// ---------------------------------------------------------------------------------------------
// Outputs. Source: chef/ohai, spec/unit/plugins/virtualbox_spec.rb
// (https://github.com/chef/ohai/blob/main/spec/unit/plugins/virtualbox_spec.rb), real outputs of
// `VBoxManage list vms`, `showvminfo --machinereadable` and `list hdds` (trimmed to the lines kept).

const OHAI_LIST_VMS = `"ubuntu-18.04-amd64_1549746024485_35372" {6294f16b-4f05-4430-afb9-773bdb237aec}
`;

const OHAI_SHOWVMINFO = `name="ubuntu-18.04-amd64_1549746024485_35372"
groups="/"
ostype="Ubuntu (64-bit)"
UUID="6294f16b-4f05-4430-afb9-773bdb237aec"
CfgFile="/virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/ubuntu-18.04-amd64_1549746024485_35372.vbox"
SnapFldr="/virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/Snapshots"
memory=1024
cpus=1
firmware="BIOS"
VMState="poweroff"
VMStateChangeTime="2019-02-09T21:00:33.575000000"
storagecontrollername0="IDE Controller"
storagecontrollername1="SATA Controller"
"IDE Controller-0-0"="none"
"IDE Controller-0-1"="none"
"IDE Controller-1-0"="none"
"IDE Controller-1-1"="none"
"SATA Controller-0-0"="/virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/Snapshots/{1c182745-4b09-41a1-a147-d3ced46f72f6}.vmdk"
"SATA Controller-ImageUUID-0-0"="1c182745-4b09-41a1-a147-d3ced46f72f6"
natnet1="nat"
macaddress1="080027E5FA8F"
nic1="nat"
nictype1="82540EM"
uart1="off"
vrde="on"
vrdeport=-1
vrdeports="5947"
vrdeaddress="127.0.0.1"
vrdeproperty[TCP/Ports]="5947"
vrdeproperty[TCP/Address]="127.0.0.1"
SnapshotName="base"
SnapshotUUID="085cbbec-70cd-4864-9208-5d938dcabb71"
CurrentSnapshotName="base"
CurrentSnapshotUUID="085cbbec-70cd-4864-9208-5d938dcabb71"
CurrentSnapshotNode="SnapshotName"
`;

const OHAI_LIST_HDDS = `UUID:           ebb6dca0-879f-480b-a50e-9efe330bd021
Parent UUID:    base
State:          locked read
Type:           normal (base)
Location:       /virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/ubuntu-18.04-amd64-disk001.vmdk
Storage format: VMDK
Capacity:       65536 MBytes
Encryption:     disabled

UUID:           1c182745-4b09-41a1-a147-d3ced46f72f6
Parent UUID:    ebb6dca0-879f-480b-a50e-9efe330bd021
State:          created
Type:           normal (differencing)
Location:       /virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/Snapshots/{1c182745-4b09-41a1-a147-d3ced46f72f6}.vmdk
Storage format: VMDK
Capacity:       65536 MBytes
Encryption:     disabled

`;

test('list vms (real output, chef/ohai fixture): name and UUID', () => {
  assert.deepEqual(vb.parseListVms(OHAI_LIST_VMS), [{ name: 'ubuntu-18.04-amd64_1549746024485_35372', uuid: '6294f16b-4f05-4430-afb9-773bdb237aec' }]);
  assert.deepEqual(vb.parseListVms('"with \\"quote" {6294F16B-4F05-4430-AFB9-773BDB237AEC}\nnoise\n'), [{ name: 'with \\"quote', uuid: '6294f16b-4f05-4430-afb9-773bdb237aec' }]);
});

test('showvminfo --machinereadable (real output, chef/ohai fixture): state, settings file, disk, snapshots, quoted keys', () => {
  const m = vb.parseMachineReadable(OHAI_SHOWVMINFO);
  assert.equal(m.get('SATA Controller-ImageUUID-0-0'), '1c182745-4b09-41a1-a147-d3ced46f72f6');
  assert.equal(m.get('vrdeproperty[TCP/Address]'), '127.0.0.1');
  assert.equal(m.get('memory'), '1024');
  const i = vb.parseShowVmInfo(OHAI_SHOWVMINFO, { sata: 'SATA Controller', ide: 'IDE Controller' });
  assert.equal(i.name, 'ubuntu-18.04-amd64_1549746024485_35372');
  assert.equal(i.uuid, '6294f16b-4f05-4430-afb9-773bdb237aec');
  assert.equal(i.state, 'poweroff');
  assert.equal(i.cfgFile, '/virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/ubuntu-18.04-amd64_1549746024485_35372.vbox');
  assert.deepEqual(i.disk, { path: '/virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/Snapshots/{1c182745-4b09-41a1-a147-d3ced46f72f6}.vmdk', uuid: '1c182745-4b09-41a1-a147-d3ced46f72f6' });
  assert.equal(i.dvd, undefined);
  assert.deepEqual(i.snapshots, [{ name: 'base', uuid: '085cbbec-70cd-4864-9208-5d938dcabb71' }]);
  assert.equal(i.serialFile, undefined);
  // with kumo's controller names the other VM's disk is not taken for kumo's
  assert.equal(vb.parseShowVmInfo(OHAI_SHOWVMINFO).disk, undefined);
});

/**
 * The lines VBoxManageInfo.cpp prints for what the ohai fixture lacks (NAT rules, a file serial
 * port, nested snapshots), in its formats: `Forwarding(%d)="%s,%s,%s,%u,%s,%u"`, `uartmode1="file,PATH"`,
 * `SnapshotName-1="..."` (source: VirtualBox's src/VBox/Frontends/VBoxManage/VBoxManageInfo.cpp;
 * a real Forwarding line: `Forwarding(0)="ssh,tcp,127.0.0.1,6999,10.0.2.15,22"`).
 */
test('showvminfo: NAT rules, serial file, kumo controllers, nested snapshots, a saved state', () => {
  const out = [
    'name="kumo-i-web-1"',
    `UUID="${VM}"`,
    'VMState="saved"',
    'CfgFile="/k/instances/web/vbox/kumo-i-web-1/kumo-i-web-1.vbox"',
    '"SATA-0-0"="/k/instances/web/vbox/kumo-i-web-1/Snapshots/{aa}.vdi"',
    '"SATA-ImageUUID-0-0"="aa"',
    '"IDE-0-0"="/k/instances/web/seed.iso"',
    'Forwarding(0)="kumo-ssh,tcp,127.0.0.1,2222,,22"',
    'Forwarding(1)="ssh,tcp,127.0.0.1,6999,10.0.2.15,22"',
    'uart1="0x03f8,4"',
    'uartmode1="file,/k/instances/web/serial.log"',
    'SnapshotName="one"',
    'SnapshotUUID="u1"',
    'SnapshotName-1="two"',
    'SnapshotUUID-1="u2"',
    'SnapshotName-1-1="three"',
    'SnapshotUUID-1-1="u3"',
  ].join('\n');
  const i = vb.parseShowVmInfo(out);
  assert.equal(i.state, 'saved');
  assert.deepEqual(i.disk, { path: '/k/instances/web/vbox/kumo-i-web-1/Snapshots/{aa}.vdi', uuid: 'aa' });
  assert.equal(i.dvd, '/k/instances/web/seed.iso');
  assert.deepEqual(i.forwards, [
    { name: 'kumo-ssh', proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 2222, guestPort: 22 },
    { name: 'ssh', proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 6999, guestPort: 22 },
  ]);
  assert.equal(i.serialFile, '/k/instances/web/serial.log');
  assert.deepEqual(i.snapshots.map((s) => s.name), ['one', 'two', 'three']);
  assert.deepEqual(i.snapshots.map((s) => s.uuid), ['u1', 'u2', 'u3']);
});

test('list hdds (real output, chef/ohai fixture): base and differencing image, children of a base', () => {
  const h = vb.parseListHdds(OHAI_LIST_HDDS);
  assert.equal(h.length, 2);
  assert.deepEqual(h[0], { uuid: 'ebb6dca0-879f-480b-a50e-9efe330bd021', state: 'locked read', type: 'normal (base)', location: '/virtual/machines/ubuntu-18.04-amd64_1549746024485_35372/ubuntu-18.04-amd64-disk001.vmdk', format: 'VMDK' });
  assert.equal(h[1]!.parentUuid, 'ebb6dca0-879f-480b-a50e-9efe330bd021');
  assert.equal(h[1]!.type, 'normal (differencing)');
  assert.deepEqual(vb.childrenOf(h, h[0]!.location).map((c) => c.uuid), ['1c182745-4b09-41a1-a147-d3ced46f72f6']);
  assert.deepEqual(vb.childrenOf(h, '/nowhere.vdi'), []);
  assert.deepEqual(vb.parseListHdds(''), []);
});

test('version', () => {
  assert.equal(vb.parseVersion('7.0.14r161095\n'), '7.0.14');
  assert.equal(vb.parseVersion('6.1.50_Debianr161033'), '6.1.50');
  assert.equal(vb.parseVersion('nothing'), undefined);
});

// ---------------------------------------------------------------------------------------------
// Errors: real VBoxManage texts.

test('error: a machine locked by another session -> VBOX_SESSION_LOCKED', () => {
  // https://github.com/hashicorp/packer/issues/184
  const stderr = `VBoxManage: error: The machine 'packer-centos-6_4-64-hdp' is already locked for a session (or being unlocked)
VBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component Machine, interface IMachine, callee nsISupports
VBoxManage: error: Context: "LockMachine(a->session, LockType_Write)" at line 425 of file VBoxManageModifyVM.cpp
`;
  const e = vb.vboxError(['modifyvm', VM, '--natpf1', 'delete', 'ssh'], stderr);
  assert.equal(e.code, 'VBOX_SESSION_LOCKED');
  assert.match(e.message, /already locked for a session/);
  assert.doesNotMatch(e.message, /Details: code/);
  assert.ok(e.hint);
  // https://github.com/hashicorp/packer/issues/12008 (startvm: "locked by a session")
  assert.equal(vb.vboxError(['startvm', VM], "VBoxManage: error: The machine 'p' is already locked by a session (or being locked or unlocked)\nVBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007)").code, 'VBOX_SESSION_LOCKED');
});

test('error: the kernel driver not loaded -> VBOX_KERNEL_DRIVER (environment)', () => {
  // https://github.com/void-linux/void-packages/issues/33920
  const stderr = `VBoxManage: error: The virtual machine 'x' has terminated unexpectedly during startup with exit code 1 (0x1)
Kernel driver not installed (rc=-1908)

The VirtualBox Linux kernel driver is either not loaded or not set up correctly. Please try setting it up again by executing

'/sbin/vboxconfig'

as root.

where: suplibOsInit what: 3 VERR_VM_DRIVER_NOT_INSTALLED (-1908) - The support driver is not installed. On linux, open returned ENOENT.
`;
  const e = vb.vboxError(['startvm', VM, '--type', 'headless'], stderr);
  assert.equal(e.code, 'VBOX_KERNEL_DRIVER');
  assert.equal(e.kind, 'environment');
  assert.match(e.hint!, /modprobe vboxdrv|vboxconfig/);
});

test('error: a host-only address outside 192.168.56.0/21 (VirtualBox 6.1.28+) -> VBOX_HOSTONLY_RANGE', () => {
  // https://github.com/mail-in-a-box/mailinabox/issues/2062
  const stderr = `VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)
VBoxManage: error: Context: "EnableStaticIPConfig(Bstr(pszIp).raw(), Bstr(pszNetmask).raw())" at line 242 of file VBoxManageHostonly.cpp
`;
  const e = vb.vboxError(['hostonlyif', 'ipconfig', 'vboxnet1', '--ip', '192.168.50.1', '--netmask', '255.255.255.0'], stderr);
  assert.equal(e.code, 'VBOX_HOSTONLY_RANGE');
  assert.match(e.hint!, /192\.168\.56\.0\/21/);
  assert.match(e.hint!, /networks\.conf/);
});

test('error: a medium in use -> VBOX_MEDIUM_IN_USE; a missing machine -> VBOX_VM_NOT_FOUND; anything else VBOX_COMMAND_FAILED', () => {
  // VirtualBox's texts (MediumImpl.cpp / VBoxManage) as users report them
  assert.equal(vb.vboxError(['closemedium', 'disk', '/m/a.vdi'], "VBoxManage: error: Cannot close medium '/m/a.vdi' because it has 1 child media\nVBoxManage: error: Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c), component MediumWrap").code, 'VBOX_MEDIUM_IN_USE');
  assert.equal(vb.vboxError(['storageattach', VM], "VBoxManage: error: Medium '/m/a.vdi' is locked for writing by another task").code, 'VBOX_MEDIUM_IN_USE');
  const nf = vb.vboxError(['showvminfo', 'gone'], "VBoxManage: error: Could not find a registered machine named 'gone'\nVBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports");
  assert.equal(nf.code, 'VBOX_VM_NOT_FOUND');
  assert.equal(nf.kind, 'not-found');
  const other = vb.vboxError(['createvm', '--name', 'x'], "VBoxManage: error: Machine settings file '/x/x.vbox' already exists\nVBoxManage: error: Details: code VBOX_E_FILE_ERROR (0x80bb0004)");
  assert.equal(other.code, 'VBOX_COMMAND_FAILED');
  assert.match(other.message, /settings file '\/x\/x\.vbox' already exists/);
  assert.deepEqual((other.details as { argv: string[] }).argv, ['VBoxManage', 'createvm', '--name', 'x']);
  assert.equal(vb.firstVBoxError(''), '(no message)');
});

test('driver options and ownership: only a kumo-named VM whose settings lie in this instance folder is ours', async () => {
  const { vboxOptions, ownedVm } = await import('../../../../src/driver/virtualbox/driver.js');
  assert.deepEqual(vboxOptions(undefined), { ostype: 'Linux_64', vramMiB: 16 });
  assert.deepEqual(vboxOptions({ ostype: 'Debian_64', vrdePort: '5901' }), { ostype: 'Debian_64', vramMiB: 16, vrdePort: 5901 });
  assert.throws(() => vboxOptions({ ostype: 'Debian 64; rm' }), (e: unknown) => isKumoError(e) && e.code === 'VBOX_SPEC_INVALID');
  assert.throws(() => vboxOptions({ vrdePort: 0 }), (e: unknown) => isKumoError(e) && e.code === 'VBOX_SPEC_INVALID');
  const dir = '/k/instances/web';
  assert.equal(ownedVm({ name: 'kumo-i-web-1', cfgFile: '/k/instances/web/vbox/kumo-i-web-1/kumo-i-web-1.vbox' }, dir), true);
  assert.equal(ownedVm({ name: 'kumo-i-web-1', cfgFile: '/k/instances/web2/vbox/x.vbox' }, dir), false, 'a sibling folder with the same prefix');
  assert.equal(ownedVm({ name: 'myvm', cfgFile: '/k/instances/web/vbox/myvm/myvm.vbox' }, dir), false, 'no kumo prefix');
  assert.equal(ownedVm({ name: 'kumo-i-web-1', cfgFile: '/home/u/VirtualBox VMs/kumo-i-web-1/kumo-i-web-1.vbox' }, dir), false, 'another home');
  assert.equal(ownedVm({ name: 'kumo-i-web-1' }, dir), false);
});
