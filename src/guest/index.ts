// The public API of src/guest: ssh keys, the ssh/scp client, readiness.
export { ensureDefaultKey, userKey, generateHostKey, hostKeyAlias, writeKnownHosts, DEFAULT_KEY_NAME, type KeyPair } from './keys.js';
export { sshArgv, scpArgv, sshOptions, remotePath, shellQuote, sshExec, spawnInherited, sharedArgvOptions, prepareShared, type SshTarget, type SshArgvOptions, type SshExecOptions, type ExecResult } from './ssh.js';
export { closeMaster, closeMasterAt, controlPathFor, controlPathIn, controlOptions, probeSocket, runtimeDir, sharingEnabled } from './master.js';
export { remoteCommand, commandName, type RemoteCommandOptions } from './command.js';
export { waitReady, sshBanner, tailFile, NotReadyError, CloudInitError, type WaitReadyOptions, type ReadyResult } from './ready.js';
