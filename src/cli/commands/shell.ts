/**
 * `kumo shell [NAME]` (alias `sh`): an interactive shell, as `multipass shell` and `lima` give
 * one. Without NAME it is the default instance (`default`, or default-instance of config.yaml),
 * made from the configured image on first use (`kumo config set image ...`) and started when it
 * is stopped.
 */
import { argString, optBool, type CommandDef } from '../command.js';

const shell: CommandDef = {
  name: 'shell',
  summary: 'open a shell in a VM; without NAME the default instance, made and started on first use',
  description:
    "Without NAME: the default instance ('default' unless `kumo config set default-instance NAME` says otherwise). When it does not exist it is launched " +
    'from your defaults (config.yaml: image, cpus, memory, disk, driver, ssh-key; built-in defaults otherwise) and kumo waits until it is ready. ' +
    'A stopped or suspended instance is started first. Everything after NAME is the command to run there instead of a login shell.',
  args: [{ name: 'name', description: 'instance name (default: the default instance)' }],
  acceptsRest: { placeholder: 'CMD...' },
  options: {
    'print-command': { type: 'boolean', description: 'print the ssh command line instead of running it (the instance is still made or started)' },
  },
  examples: ['kumo shell', 'kumo sh web', 'kumo shell web -- uptime', 'kumo config set image debian-12 && kumo shell'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const { defaultInstanceName, userDefaults } = await import('../user-defaults.js');
    const { sshSession } = await import('../ssh-session.js');
    const paths = await ctx.paths();
    const given = argString(args, 'name');
    const name = given ?? (await defaultInstanceName());
    let state: string;
    try {
      state = (await lib.instanceStatus(paths, name)).state;
    } catch (e) {
      // only the default instance is made on first use; a NAME given that does not exist is an error
      if ((e as { code?: string }).code !== 'INSTANCE_NOT_FOUND' || given !== undefined) throw e;
      state = 'absent';
    }
    try {
      if (state === 'absent') {
        ctx.out.note(`making the default instance '${name}' (first use)`);
        await lib.launch({ ...((await userDefaults()) as Omit<import('../../instance/index.js').LaunchOptions, 'name'>), name, paths, wait: true, reap: false, onEvent: ctx.out.events(), signal: ctx.signal });
      } else if (state === 'stopped' || state === 'crashed' || state === 'suspended') {
        await lib.startInstance(paths, name, { wait: true, onEvent: ctx.out.events(), signal: ctx.signal });
      }
    } finally {
      ctx.out.finishProgress();
    }
    return sshSession(ctx, name, args.rest, optBool(args, 'print-command'));
  },
};
export default shell;
