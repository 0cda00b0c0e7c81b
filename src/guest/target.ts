/** Where and as whom kumo reaches an instance over ssh (used by ssh.ts and the shared-connection code in master.ts). */
export interface SshTarget {
  /** Instance name (for the host key alias and messages). */
  name: string;
  host: string;
  port: number;
  user: string;
  /** Private key file. */
  identity: string;
  /** The instance's known_hosts file. */
  knownHosts: string;
  /** Host key alias recorded in knownHosts. */
  alias: string;
}
