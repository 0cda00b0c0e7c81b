/**
 * The user's config.yaml as the CLI uses it (src/config/user-config.ts): loaded once per command,
 * checked against the registered drivers.
 */
import type { UserConfig } from '../config/user-config.js';

let cached: Promise<UserConfig> | undefined;

/** The user config (every problem of the file is an error naming it; a missing file is {}). */
export function userConfig(): Promise<UserConfig> {
  return (cached ??= (async () => {
    const { loadUserConfig } = await import('../config/user-config.js');
    const { driverNames } = await import('../driver/index.js');
    return loadUserConfig({ drivers: driverNames() });
  })());
}

/** The spec fields the config fills (under a --spec file and the flags). */
export async function userDefaults(): Promise<Record<string, unknown>> {
  const { specDefaults } = await import('../config/user-config.js');
  return specDefaults(await userConfig());
}

/** The instance `kumo shell` / `kumo ssh-config` use without NAME. */
export async function defaultInstanceName(): Promise<string> {
  const { DEFAULT_INSTANCE } = await import('../config/user-config.js');
  return (await userConfig())['default-instance'] ?? DEFAULT_INSTANCE;
}
