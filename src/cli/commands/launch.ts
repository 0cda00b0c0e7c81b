/**
 * `kumo launch [IMAGE]`: the library's launch() (create, start, wait until ready); a failed
 * launch leaves nothing behind unless --keep-on-failure is given.
 */
import { optBool, optString, type CommandDef } from '../command.js';
import { UsageError } from '../../core/errors.js';
import { sshWhere } from '../output.js';
import { IMAGE_ARG, INSTANCE_OPTIONS, applyLifetimeFlags, LIFETIME_OPTIONS, loadSpecInput, timeoutOption, waitOption } from '../flags.js';

const launch: CommandDef = {
  name: 'launch',
  summary: 'create a VM from an image, start it and wait until ssh and cloud-init are ready',
  description:
    'IMAGE is an alias (debian-12), an image id, a URL or a local file; it is fetched and verified into the image store if needed, and the VM runs on a copy-on-write overlay of it. kumo makes an ssh host key for the VM and passes it in the cloud-init seed, so `kumo ssh` is verified from the first connection. Readiness means ssh answers and cloud-init has finished for this instance. ' +
    'When a warm template of the image and machine shape exists (`kumo image warm IMAGE`), the VM is a clone of it: restored in about a second with its own hostname, machine-id, ssh host key and clock, instead of booted (--cold boots). ' +
    'The VM runs under QEMU directly (--driver qemu, the default) or as a libvirt domain (--driver libvirt; --connect, --pool and --network are its settings, kept with the instance).',
  args: [IMAGE_ARG],
  options: {
    ...INSTANCE_OPTIONS,
    ...LIFETIME_OPTIONS,
    wait: waitOption('wait until ready (default; --no-wait returns once the VM is started)'),
    timeout: timeoutOption('seconds to wait for readiness (default 600)'),
    reuse: { type: 'string', description: 'reuse instance NAME when it exists with the same spec (started if stopped, no new boot when running); a different spec is an error; made as usual when absent', placeholder: 'NAME' },
    'keep-on-failure': { type: 'boolean', description: 'keep the instance when a step fails, for inspection (default: it is deleted)' },
    cold: { type: 'boolean', description: 'boot, even when a warm template of the image and shape exists (default: restore it, about a second)' },
  },
  examples: [
    'kumo launch debian-12 --name web --port 8080:80 --user-data init.yaml',
    'kumo launch ./my.qcow2 --cpus 4 --memory 4G --no-wait',
    'kumo launch --spec web.yaml',
    'kumo launch debian-12 --name ci-1 --label team=ci --ttl 1h30m',
    'kumo launch --reuse dev debian-12 --memory 2G',
    'kumo launch deb12 --driver libvirt --connect qemu:///system',
    'kumo launch debian-12 --driver libvirt --connect qemu+ssh://me@host/system --pool default',
  ],
  async run(ctx, args) {
    const { launch: launchInstance, newInstanceName } = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const input = await loadSpecInput(args);
    await applyLifetimeFlags(args, input);
    const reuse = optString(args, 'reuse');
    if (reuse !== undefined) {
      if (input.name !== undefined && input.name !== reuse) throw new UsageError(`--reuse ${reuse} and --name ${String(input.name)} name two instances`, { hint: 'give the name once: kumo launch --reuse NAME ...' });
      input.name = reuse;
    }
    if (input.name === undefined) input.name = newInstanceName();
    const name = String(input.name);
    const wait = args.options.wait !== false;
    // One use case, one failure policy: a failed launch leaves nothing unless --keep-on-failure;
    // its error says what became of the instance and carries the console's last lines (hint).
    let vm: import('../../instance/index.js').Instance;
    try {
      vm = await launchInstance({
        ...(input as Omit<import('../../instance/index.js').LaunchOptions, 'name'>),
        paths,
        wait,
        keepOnFailure: optBool(args, 'keep-on-failure'),
        cold: optBool(args, 'cold'),
        // the CLI's VMs are meant to outlive it: never reaped with this process
        reap: false,
        ...(reuse !== undefined ? { reuse: true } : {}),
        onEvent: ctx.out.events(),
        signal: ctx.signal,
      });
    } finally {
      ctx.out.finishProgress();
    }
    const s = vm.started!;
    ctx.out.data({ ...s.record, accel: s.accel, ssh: { ...s.record.ssh, ...(s.ssh ? { host: s.ssh.host, port: s.ssh.port } : {}) }, ready: s.ready ?? null, restored: s.restored ?? null }, () => {
      const how = s.restored ? `, from template ${s.record.template?.id} in ${s.restored.startMs + s.restored.restoreMs + (s.restored.identityMs ?? 0) + (s.restored.sshMs ?? 0)} ms` : '';
      ctx.out.note(`${name} is ${wait ? 'ready' : 'starting'} (${s.record.driver}, ${s.accel}${how}); ${sshWhere(s.ssh)}`);
      ctx.out.line(name);
      if (s.record.ports.length) ctx.out.note(`  ports: ${s.record.ports.map((p) => `${p.hostAddr}:${p.hostPort}->${p.guestPort}/${p.proto}${p.dynamic ? ' (dynamic)' : ''}`).join(', ')}`);
      ctx.out.note(`  kumo ssh ${name}    kumo exec ${name} -- CMD    kumo delete --force ${name}`);
    });
  },
};

export default launch;
