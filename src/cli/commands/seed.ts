/**
 * `kumo seed create`: a cloud-init seed ISO (NoCloud `cidata` or ConfigDrive `config-2`), written
 * natively (no genisoimage, xorriso or cloud-localds). Replaces `cloud-localds`.
 */
import type { CommandDef } from '../command.js';
import { optList, optString } from '../command.js';

const create: CommandDef = {
  name: 'create',
  summary: 'write a cloud-init seed ISO (NoCloud or ConfigDrive)',
  description:
    "kumo's own cloud-config (an account with passwordless sudo and the given ssh keys, the host name) is merged with --user-data: " +
    'a #cloud-config is merged into one document (your lists are appended to kumo\'s, your other keys win); a script, #include or MIME ' +
    'multipart becomes part of a MIME multipart. See docs/seeds.md.',
  options: {
    output: { type: 'string', short: 'o', required: true, description: 'the ISO file to write (replaced atomically)', placeholder: 'FILE' },
    format: { type: 'string', description: 'seed layout (default nocloud)', placeholder: 'FORMAT', choices: ['nocloud', 'configdrive', 'cernvm'] },
    'user-data': { type: 'string', description: 'your user-data: #cloud-config, a script, #include or MIME multipart', placeholder: 'FILE' },
    'meta-data': { type: 'string', description: 'extra meta-data keys (a YAML or JSON mapping)', placeholder: 'FILE' },
    'network-config': { type: 'string', description: 'network config (nocloud: v1/v2 YAML; configdrive: network_data.json)', placeholder: 'FILE' },
    'vendor-data': { type: 'string', description: 'vendor-data', placeholder: 'FILE' },
    hostname: { type: 'string', description: 'the guest host name', placeholder: 'HOST' },
    'ssh-key': { type: 'string', multiple: true, description: 'a public key file to authorise (repeatable; a private key path uses PATH.pub)', placeholder: 'FILE' },
    user: { type: 'string', description: "the account kumo creates (default 'kumo')", placeholder: 'NAME' },
    'instance-id': { type: 'string', description: 'the instance id (default: from --meta-data, else a new random one)', placeholder: 'ID' },
  },
  examples: [
    'kumo seed create -o seed.iso --hostname web --ssh-key ~/.ssh/id_ed25519.pub',
    'kumo seed create -o seed.iso --user-data my-config.yaml --network-config net.yaml',
    'kumo seed create -o config.iso --format configdrive --user-data setup.sh',
  ],
  async run(ctx, args) {
    const { fsError } = await import('../../core/errors.js');
    const { readFile } = await import('node:fs/promises');
    const { randomUUID } = await import('node:crypto');
    const { resolve } = await import('node:path');
    const seed = await import('../../seed/index.js');
    const output = optString(args, 'output')!;
    const read = async (opt: string): Promise<string | undefined> => {
      const f = optString(args, opt);
      if (f === undefined) return undefined;
      try {
        return await readFile(f, 'utf8');
      } catch (e) {
        throw fsError(e, f, `read the --${opt} file`);
      }
    };
    const userData = await read('user-data');
    const metaText = await read('meta-data');
    const networkConfig = await read('network-config');
    const vendorData = await read('vendor-data');
    let metaData: Record<string, unknown> = {};
    if (metaText !== undefined) metaData = seed.parseCloudConfig(metaText, optString(args, 'meta-data')!);
    const { readPublicKeys } = await import('../../guest/keys.js');
    const keys: string[] = [];
    for (const f of optList(args, 'ssh-key')) keys.push(...(await readPublicKeys(f)));
    const fromMeta = typeof metaData['instance-id'] === 'string' ? (metaData['instance-id'] as string) : undefined;
    const instanceId = optString(args, 'instance-id') ?? fromMeta ?? `i-${randomUUID()}`;
    const spec: import('../../seed/index.js').SeedSpec = {
      format: (optString(args, 'format') as 'nocloud' | 'configdrive' | 'cernvm' | undefined) ?? 'nocloud',
      instanceId,
      sshAuthorizedKeys: keys,
      metaData,
    };
    const hostname = optString(args, 'hostname') ?? (typeof metaData['local-hostname'] === 'string' ? (metaData['local-hostname'] as string) : undefined);
    if (hostname) spec.hostname = hostname;
    const user = optString(args, 'user');
    if (user) spec.user = user;
    if (userData !== undefined) (spec.userData = userData), (spec.userDataSource = optString(args, 'user-data')!);
    if (networkConfig !== undefined) (spec.networkConfig = networkConfig), (spec.networkConfigSource = optString(args, 'network-config')!);
    if (vendorData !== undefined) spec.vendorData = vendorData;
    const { files, volumeId } = seed.seedFiles(spec);
    const out = resolve(output);
    await seed.writeSeed(spec, out);
    ctx.out.data({ output: out, format: spec.format, label: volumeId, instanceId, files: files.map((f) => f.path) }, () => {
      ctx.out.fields([
        ['seed', out],
        ['format', `${spec.format} (label ${volumeId})`],
        ['instance-id', instanceId],
        ['files', files.map((f) => f.path).join(', ')],
      ]);
    });
  },
};

const seedCommand: CommandDef = {
  name: 'seed',
  summary: 'cloud-init seed images (replaces cloud-localds)',
  subcommands: [create],
  examples: ['kumo seed create --output seed.iso --ssh-key ~/.ssh/id_ed25519.pub'],
};
export default seedCommand;
