/**
 * A FAKE `VBoxManage`, for the integration test beside it: VirtualBox cannot be installed or run
 * on this machine (Debian 12 does not carry it and its kernel modules cannot load here), so this
 * program stands in for it. It is a mock, not VirtualBox: it records every argv it is called with
 * (one JSON line each, in $FAKE_VBOX_LOG), keeps a small registry of machines and media in
 * $FAKE_VBOX_STATE, makes and deletes the files VirtualBox would (the machine folder under
 * --basefolder, the .vbox settings file, differencing images under Snapshots/, a saved state),
 * and answers in the documented output formats (`showvminfo --machinereadable`, `list vms`,
 * `list hdds`) and with VirtualBox's error texts. Like VirtualBox it refuses to modify a running
 * machine (session locked), and `unregistervm --delete` deletes every hard disk still attached,
 * so a driver that forgot to detach the shared base would lose it.
 *
 * Run as `node fake-vboxmanage.js ARGS...` through a `VBoxManage` shell wrapper first on PATH.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';

interface Attach {
  medium: string;
  type: string;
  implicit?: boolean;
}
interface Vm {
  name: string;
  uuid: string;
  folder: string;
  cfg: string;
  state: string;
  ctl: Record<string, string>;
  attach: Record<string, Attach>;
  forwards: string[];
  snapshots: { name: string; uuid: string }[];
  settings: Record<string, string>;
  uartFile?: string;
}
interface Hdd {
  uuid: string;
  location: string;
  parent?: string;
  type: string;
}
interface State {
  vms: Vm[];
  hdds: Hdd[];
  dvds: string[];
}

const statePath = process.env.FAKE_VBOX_STATE!;
const args = process.argv.slice(2);
appendFileSync(process.env.FAKE_VBOX_LOG!, JSON.stringify(args) + '\n');
const st: State = existsSync(statePath) ? (JSON.parse(readFileSync(statePath, 'utf8')) as State) : { vms: [], hdds: [], dvds: [] };

function save(): void {
  writeFileSync(statePath + '.tmp', JSON.stringify(st, null, 1));
  renameSync(statePath + '.tmp', statePath);
}
function fail(msg: string, details = 'VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox'): never {
  process.stderr.write(`VBoxManage: error: ${msg}\nVBoxManage: error: Details: code ${details}\n`);
  process.exit(1);
}
function vm(ref: string | undefined): Vm {
  const v = st.vms.find((x) => x.uuid === ref || x.name === ref);
  if (!v) fail(`Could not find a registered machine named '${ref}'`);
  return v;
}
function opt(name: string, from = args): string | undefined {
  const i = from.indexOf(name);
  return i >= 0 ? from[i + 1] : undefined;
}
function unlocked(v: Vm): void {
  if (v.state === 'running' || v.state === 'paused')
    fail(`The machine '${v.name}' is already locked for a session (or being unlocked)`, 'VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports');
}
function slot(ctl: string, port: string, dev: string): string {
  return `${ctl}-${port}-${dev}`;
}
function detach(v: Vm, key: string): void {
  const a = v.attach[key];
  if (!a) return;
  // VirtualBox deletes the differencing image it made for a multiattach medium when it is detached.
  if (a.implicit) {
    rmSync(a.medium, { force: true });
    st.hdds = st.hdds.filter((h) => h.location !== a.medium);
  }
  delete v.attach[key];
}

const [cmd, ...rest] = args;
// FAKE_VBOX_FAIL=startvm: answer that sub-command as VirtualBox does when another session holds the machine.
if (process.env.FAKE_VBOX_FAIL === cmd) fail(`The machine '${rest[0]}' is already locked by a session (or being locked or unlocked)`, 'VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports');
switch (cmd) {
  case '--version':
    process.stdout.write('7.0.14r161095\n');
    break;
  case 'list': {
    if (rest[0] === 'vms') for (const v of st.vms) process.stdout.write(`"${v.name}" {${v.uuid}}\n`);
    else if (rest[0] === 'hdds')
      for (const h of st.hdds)
        process.stdout.write(
          `UUID:           ${h.uuid}\nParent UUID:    ${h.parent ?? 'base'}\nState:          created\nType:           ${h.type}\nLocation:       ${h.location}\nStorage format: VDI\nCapacity:       64 MBytes\nEncryption:     disabled\n\n`,
        );
    else fail(`unknown list ${rest[0]}`, 'E_INVALIDARG');
    break;
  }
  case 'createvm': {
    const name = opt('--name')!;
    const base = opt('--basefolder')!;
    const uuid = opt('--uuid') ?? randomUUID();
    const folder = join(base, name);
    const cfg = join(folder, `${name}.vbox`);
    if (existsSync(cfg) || st.vms.some((x) => x.name === name || x.uuid === uuid)) fail(`Machine settings file '${cfg}' already exists`, 'VBOX_E_FILE_ERROR (0x80bb0004), component MachineWrap, interface IMachine');
    mkdirSync(folder, { recursive: true });
    writeFileSync(cfg, `<?xml version="1.0"?>\n<VirtualBox><Machine uuid="{${uuid}}" name="${name}"/></VirtualBox>\n`);
    st.vms.push({ name, uuid, folder, cfg, state: 'poweroff', ctl: {}, attach: {}, forwards: [], snapshots: [], settings: { ostype: opt('--ostype') ?? 'Other' } });
    process.stdout.write(`Virtual machine '${name}' is created and registered.\nUUID: ${uuid}\nSettings file: '${cfg}'\n`);
    break;
  }
  case 'storagectl': {
    const v = vm(rest[0]);
    unlocked(v);
    v.ctl[opt('--name')!] = opt('--add')!;
    break;
  }
  case 'modifyvm': {
    const v = vm(rest[0]);
    unlocked(v);
    for (let i = 1; i < rest.length; i++) {
      const k = rest[i]!;
      if (k === '--natpf1') {
        if (rest[i + 1] === 'delete') {
          const n = rest[i + 2]!;
          if (!v.forwards.some((r) => r.split(',')[0] === n)) fail(`Code NS_ERROR_INVALID_ARG (0x80070057) - Invalid argument value`, 'NS_ERROR_INVALID_ARG');
          v.forwards = v.forwards.filter((r) => r.split(',')[0] !== n);
          i += 2;
        } else {
          const r = rest[++i]!;
          if (v.forwards.some((x) => x.split(',')[0] === r.split(',')[0])) fail(`A NAT rule of this name already exists`, 'NS_ERROR_INVALID_ARG');
          v.forwards.push(r);
        }
      } else if (k === '--uart1') {
        v.settings.uart1 = `${rest[i + 1]},${rest[i + 2]}`;
        i += 2;
      } else if (k === '--uartmode1') {
        v.uartFile = rest[i + 2];
        i += 2;
      } else if (k.startsWith('--')) {
        v.settings[k.slice(2)] = rest[++i]!;
      }
    }
    break;
  }
  case 'modifymedium': {
    const target = rest[1]!;
    const h = st.hdds.find((x) => x.location === target || x.uuid === target);
    if (opt('--type') === 'multiattach') {
      if (!existsSync(target)) fail(`Could not find file for the medium '${target}' (VERR_FILE_NOT_FOUND)`, 'VBOX_E_FILE_ERROR (0x80bb0004)');
      if (h) h.type = 'multiattach';
      else st.hdds.push({ uuid: randomUUID(), location: target, type: 'multiattach' });
    } else if (opt('--resize')) {
      if (!h) fail(`Could not find the medium '${target}'`);
    }
    break;
  }
  case 'storageattach': {
    const v = vm(rest[0]);
    unlocked(v);
    const key = slot(opt('--storagectl')!, opt('--port') ?? '0', opt('--device') ?? '0');
    const medium = opt('--medium')!;
    detach(v, key);
    if (medium === 'none') break;
    if (opt('--type') === 'hdd') {
      const base = st.hdds.find((x) => x.location === medium);
      if (!base) fail(`Could not find file for the medium '${medium}' (VERR_FILE_NOT_FOUND)`, 'VBOX_E_FILE_ERROR (0x80bb0004)');
      if (base.type === 'multiattach' || opt('--mtype') === 'multiattach') {
        const id = randomUUID();
        const diff = join(v.folder, 'Snapshots', `{${id}}.vdi`);
        mkdirSync(dirname(diff), { recursive: true });
        writeFileSync(diff, 'differencing image\n');
        st.hdds.push({ uuid: id, location: diff, parent: base.uuid, type: 'normal (differencing)' });
        v.attach[key] = { medium: diff, type: 'hdd', implicit: true };
      } else v.attach[key] = { medium, type: 'hdd' };
    } else {
      if (!existsSync(medium)) fail(`Could not find file for the medium '${medium}' (VERR_FILE_NOT_FOUND)`, 'VBOX_E_FILE_ERROR (0x80bb0004)');
      if (!st.dvds.includes(medium)) st.dvds.push(medium);
      v.attach[key] = { medium, type: 'dvddrive' };
    }
    break;
  }
  case 'closemedium': {
    st.dvds = st.dvds.filter((d) => d !== rest[1]);
    break;
  }
  case 'showvminfo': {
    const v = vm(rest[0]);
    const out = [`name="${v.name}"`, `ostype="${v.settings.ostype}"`, `UUID="${v.uuid}"`, `CfgFile="${v.cfg}"`, `SnapFldr="${join(v.folder, 'Snapshots')}"`, `memory=${v.settings.memory ?? 128}`, `cpus=${v.settings.cpus ?? 1}`, `VMState="${v.state}"`, `VMStateChangeTime="2026-01-01T00:00:00.000000000"`];
    for (const [c, t] of Object.entries(v.ctl)) out.push(`storagecontrollername="${c}"`, `storagecontrollertype="${t}"`);
    for (const c of Object.keys(v.ctl)) {
      const a = v.attach[`${c}-0-0`];
      out.push(`"${c}-0-0"="${a ? a.medium : 'none'}"`);
      const h = a ? st.hdds.find((x) => x.location === a.medium) : undefined;
      if (h) out.push(`"${c}-ImageUUID-0-0"="${h.uuid}"`);
    }
    out.push(`nic1="${v.settings.nic1 ?? 'none'}"`, `nictype1="${v.settings.nictype1 ?? '82540EM'}"`, `macaddress1="${v.settings.macaddress1 ?? '080027000000'}"`);
    v.forwards.forEach((r, i) => out.push(`Forwarding(${i})="${r}"`));
    out.push(v.uartFile ? `uart1="${v.settings.uart1}"` : 'uart1="off"', ...(v.uartFile ? [`uartmode1="file,${v.uartFile}"`] : []), `vrde="${v.settings.vrde ?? 'off'}"`);
    v.snapshots.forEach((s, i) => out.push(`SnapshotName${i ? `-${i}` : ''}="${s.name}"`, `SnapshotUUID${i ? `-${i}` : ''}="${s.uuid}"`));
    process.stdout.write(out.join('\n') + '\n');
    break;
  }
  case 'startvm': {
    const v = vm(rest[0]);
    if (v.state === 'running') fail(`The machine '${v.name}' is already locked by a session (or being locked or unlocked)`, 'VBOX_E_INVALID_OBJECT_STATE (0x80bb0007)');
    if (v.state === 'saved') rmSync(join(v.folder, 'Snapshots', 'state.sav'), { force: true });
    v.state = 'running';
    if (v.uartFile) appendFileSync(v.uartFile, `fake VirtualBox: ${v.name} started\n`);
    process.stdout.write(`Waiting for VM "${v.name}" to power on...\nVM "${v.name}" has been successfully started.\n`);
    break;
  }
  case 'controlvm': {
    const v = vm(rest[0]);
    const what = rest[1];
    if (v.state !== 'running' && v.state !== 'paused') fail(`Machine '${v.name}' is not currently running`, 'VBOX_E_INVALID_VM_STATE (0x80bb0002)');
    if (what === 'acpipowerbutton' || what === 'poweroff') v.state = 'poweroff';
    else if (what === 'savestate') {
      mkdirSync(join(v.folder, 'Snapshots'), { recursive: true });
      writeFileSync(join(v.folder, 'Snapshots', 'state.sav'), 'saved state\n');
      v.state = 'saved';
    } else if (what === 'natpf1') {
      if (rest[2] === 'delete') v.forwards = v.forwards.filter((r) => r.split(',')[0] !== rest[3]);
      else v.forwards.push(rest[2]!);
    } else fail(`unknown controlvm ${what}`, 'E_INVALIDARG');
    break;
  }
  case 'discardstate': {
    const v = vm(rest[0]);
    rmSync(join(v.folder, 'Snapshots', 'state.sav'), { force: true });
    v.state = 'poweroff';
    break;
  }
  case 'snapshot': {
    const v = vm(rest[0]);
    const [, op, name] = rest;
    if (op === 'take') v.snapshots.push({ name: name!, uuid: randomUUID() });
    else if (op === 'restore') {
      unlocked(v);
      if (!v.snapshots.some((s) => s.name === name)) fail(`Could not find a snapshot named '${name}'`);
    } else if (op === 'delete') v.snapshots = v.snapshots.filter((s) => s.name !== name);
    break;
  }
  case 'clonevm': {
    const src = vm(rest[0]);
    unlocked(src);
    const name = opt('--name')!;
    const uuid = opt('--uuid') ?? randomUUID();
    const folder = join(opt('--basefolder')!, name);
    const cfg = join(folder, `${name}.vbox`);
    mkdirSync(folder, { recursive: true });
    writeFileSync(cfg, `<?xml version="1.0"?>\n<VirtualBox><Machine uuid="{${uuid}}" name="${name}"/></VirtualBox>\n`);
    const attach: Record<string, Attach> = {};
    for (const [k, a] of Object.entries(src.attach)) {
      if (a.type !== 'hdd') continue;
      const copy = join(folder, `${name}-disk1.vdi`);
      copyFileSync(a.medium, copy);
      st.hdds.push({ uuid: randomUUID(), location: copy, type: 'normal (base)' });
      attach[k] = { medium: copy, type: 'hdd' };
    }
    st.vms.push({ ...src, name, uuid, folder, cfg, state: 'poweroff', attach, snapshots: [], forwards: [...src.forwards], settings: { ...src.settings } });
    process.stdout.write(`0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\nMachine has been successfully cloned as "${name}"\n`);
    break;
  }
  case 'unregistervm': {
    const v = vm(rest[0]);
    unlocked(v);
    if (rest.includes('--delete')) {
      // VirtualBox deletes the hard disks still attached with the machine: the driver must detach a shared base first.
      for (const a of Object.values(v.attach))
        if (a.type === 'hdd') {
          rmSync(a.medium, { force: true });
          st.hdds = st.hdds.filter((h) => h.location !== a.medium);
        }
      rmSync(v.folder, { recursive: true, force: true });
    }
    st.vms = st.vms.filter((x) => x !== v);
    break;
  }
  default:
    fail(`unknown command '${cmd}'`, 'E_INVALIDARG');
}
save();
