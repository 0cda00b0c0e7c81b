/**
 * `kumo ssh-config [NAME...]`: an OpenSSH config block per instance (as `vagrant ssh-config` and
 * `limactl show-ssh --format config` print), so that plain `ssh`, `scp`, `rsync` and editors'
 * remote plugins reach the VM with the same pinned host key kumo uses.
 */
import { argList, type CommandDef } from '../command.js';

/** A value of an ssh_config line, double-quoted when it holds blanks (ssh_config(5) reads quotes). */
function value(v: string | number): string {
  const s = String(v);
  return /[\s#]/.test(s) ? `"${s}"` : s;
}

const sshConfig: CommandDef = {
  name: 'ssh-config',
  summary: 'print an OpenSSH config block for VMs (ssh -F, ~/.ssh/config, scp, rsync, editors)',
  description:
    "Without NAME: the default instance ('default', or default-instance of config.yaml). Each block is 'Host kumo-NAME' with the address and port kumo " +
    "forwards, the login user, kumo's key and the instance's own known_hosts with StrictHostKeyChecking yes: the host key kumo made for the VM is the only one accepted. " +
    'The port is known once the VM has been started; a VM that is not running is printed with a note (its port may change at its next start).',
  args: [{ name: 'names', variadic: true, placeholder: 'NAME', description: 'instance names (default: the default instance)' }],
  examples: ['kumo ssh-config web >> ~/.ssh/config && ssh kumo-web', 'kumo ssh-config web > web.conf && scp -F web.conf file kumo-web:', "rsync -e 'ssh -F web.conf' -a site/ kumo-web:site/"],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const { ConflictError } = await import('../../core/errors.js');
    const paths = await ctx.paths();
    let names = argList(args, 'names');
    if (!names.length) names = [await (await import('../user-defaults.js')).defaultInstanceName()];
    const blocks: { name: string; host: string; options: [string, string | number][]; running: boolean }[] = [];
    for (const name of names) {
      const st = await lib.instanceStatus(paths, name);
      if (!st.record)
        throw new ConflictError('INSTANCE_INCOMPLETE', `instance '${name}' cannot be used: ${st.detail ?? st.state}`, { hint: `remove what is left with: kumo delete ${name}` });
      const base = lib.sshTargetFor(paths, st.record);
      const t = st.ssh ? { ...base, host: st.ssh.host, port: st.ssh.port } : base;
      if (!t.port)
        throw new ConflictError('SSH_ADDRESS_UNKNOWN', `instance '${name}' has no ssh port yet (it has never been started)`, { hint: `start it first: kumo start ${name}` });
      blocks.push({
        name,
        host: t.alias,
        running: st.state === 'running',
        options: [
          ['HostName', t.host],
          ['Port', t.port],
          ['User', t.user],
          ['IdentityFile', t.identity],
          ['IdentitiesOnly', 'yes'],
          ['UserKnownHostsFile', t.knownHosts],
          ['GlobalKnownHostsFile', '/dev/null'],
          ['HostKeyAlias', t.alias],
          ['StrictHostKeyChecking', 'yes'],
          ['PasswordAuthentication', 'no'],
          ['KbdInteractiveAuthentication', 'no'],
          ['ServerAliveInterval', 15],
          ['LogLevel', 'ERROR'],
        ],
      });
    }
    if (ctx.out.json) return ctx.out.jsonDoc(blocks.map((b) => ({ name: b.name, host: b.host, running: b.running, options: Object.fromEntries(b.options) })));
    ctx.out.line(blocks.map((b) => [`Host ${b.host}`, ...b.options.map(([k, v]) => `  ${k} ${value(v)}`)].join('\n')).join('\n\n'));
    for (const b of blocks) if (!b.running) ctx.out.note(`${b.name} is not running (its port may change when it starts): kumo start ${b.name}`);
  },
};
export default sshConfig;
