/** `kumo config get|set|unset|list|path`: the user's defaults in $XDG_CONFIG_HOME/kumo/config.yaml. */
import { argString, type CommandDef } from '../command.js';

const KEY_ARG = { name: 'key', required: true, description: 'image, cpus, memory, disk, driver, ssh-key or default-instance' };

const DESCRIPTION =
  'The file is $XDG_CONFIG_HOME/kumo/config.yaml (~/.config/kumo/config.yaml; KUMO_CONFIG=FILE names another). ' +
  'Precedence for launch and create: command-line flags, then the --spec file, then this file, then the built-in defaults. ' +
  'Every value is checked when it is set, and the whole file when a command reads it.';

const config: CommandDef = {
  name: 'config',
  summary: 'show or change your defaults (image, cpus, memory, disk, driver, ssh key, default instance)',
  description: DESCRIPTION,
  subcommands: [
    {
      name: 'get',
      summary: 'print the value of one key (exit 1 when it is not set)',
      args: [KEY_ARG],
      examples: ['kumo config get memory'],
      async run(ctx, args) {
        const uc = await import('../../config/user-config.js');
        const key = uc.configKey(argString(args, 'key')!);
        const { userConfig } = await import('../user-defaults.js');
        const v = (await userConfig())[key];
        if (ctx.out.json) return ctx.out.jsonDoc({ key, value: v ?? null });
        if (v === undefined) return 1;
        ctx.out.line(String(v));
      },
    },
    {
      name: 'set',
      summary: 'set one key (checked first; the file keeps its other keys and comments)',
      args: [KEY_ARG, { name: 'value', required: true, description: 'its value' }],
      examples: ['kumo config set memory 2G', 'kumo config set image debian-12', 'kumo config set ssh-key ~/.ssh/id_ed25519'],
      async run(ctx, args) {
        const uc = await import('../../config/user-config.js');
        const { driverNames } = await import('../../driver/index.js');
        const key = argString(args, 'key')!;
        const value = await uc.setUserConfigKey(key, argString(args, 'value')!, { drivers: driverNames() });
        if (ctx.out.json) return ctx.out.jsonDoc({ key, value, file: uc.userConfigPath() });
        ctx.out.note(`${key} = ${value} (${uc.userConfigPath()})`);
      },
    },
    {
      name: 'unset',
      summary: 'remove one key (back to the built-in default)',
      args: [KEY_ARG],
      examples: ['kumo config unset disk'],
      async run(ctx, args) {
        const uc = await import('../../config/user-config.js');
        const { driverNames } = await import('../../driver/index.js');
        const key = argString(args, 'key')!;
        const had = await uc.unsetUserConfigKey(key, { drivers: driverNames() });
        if (ctx.out.json) return ctx.out.jsonDoc({ key, removed: had });
        ctx.out.note(had ? `${key} removed` : `${key} was not set`);
      },
    },
    {
      name: 'list',
      summary: 'every key: its value, and where it comes from (the file or the built-in default)',
      examples: ['kumo config list', 'kumo config list --json'],
      async run(ctx) {
        const uc = await import('../../config/user-config.js');
        const { DEFAULTS } = await import('../../config/spec.js');
        const { userConfig } = await import('../user-defaults.js');
        const c = await userConfig();
        const builtin: Record<string, string | undefined> = {
          image: DEFAULTS.image,
          cpus: String(DEFAULTS.cpus),
          memory: `${DEFAULTS.memoryMiB}M`,
          disk: 'the image size',
          driver: DEFAULTS.driver,
          'ssh-key': 'kumo\u2019s own key',
          'default-instance': uc.DEFAULT_INSTANCE,
        };
        const rows = uc.USER_CONFIG_KEYS.map(({ key, description }) => ({
          key,
          value: c[key] !== undefined ? String(c[key]) : builtin[key],
          source: c[key] !== undefined ? 'config' : 'default',
          description,
        }));
        if (ctx.out.json) return ctx.out.jsonDoc({ file: uc.userConfigPath(), keys: rows });
        ctx.out.table(rows, [
          { header: 'KEY', get: (r) => r.key },
          { header: 'VALUE', get: (r) => r.value },
          { header: 'SOURCE', get: (r) => r.source },
        ]);
      },
    },
    {
      name: 'path',
      summary: 'print where the config file is (it need not exist)',
      async run(ctx) {
        const uc = await import('../../config/user-config.js');
        ctx.out.line(uc.userConfigPath());
      },
    },
  ],
};
export default config;
