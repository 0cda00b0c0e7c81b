/**
 * The sshd_config of a test's own sshd on 127.0.0.1: one host key, one authorized_keys file, key
 * logins only (root too), no PAM, no pid file. Tests start sshd with `sshd -D -e -f FILE`.
 */
export function sshdConfig(o: { port: number | string; hostKey: string; authorizedKeys: string }): string {
  return [
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${o.hostKey}`,
    'PidFile none',
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    '',
  ].join('\n');
}
