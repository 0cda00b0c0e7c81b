/**
 * The JSON Schema of the instance spec file (`kumo create --spec FILE`), for editors: completion,
 * descriptions and checks while typing. It is built from the validator's own field list
 * (config/spec.ts CORE_FIELDS and the drivers' option table), so a field the validator knows and
 * the schema does not (or the reverse) fails here, at once: `instanceSpecSchema` throws for a field
 * without a schema entry. The package ships it as schema/instance-spec.schema.json (a test keeps
 * that file equal to this output); `kumo schema instance-spec` prints it.
 *
 * The validator stays the judge: the schema describes the same values (a unit test feeds both the
 * same samples), but some limits only the validator checks (a size given as text against its
 * range, a file that must exist).
 */
import { INSTANCE_NAME_MAX, INSTANCE_NAME_RE, USER_NAME_RE } from '../core/names.js';
import { CORE_FIELDS, DEFAULTS, LIMITS, SCHEMA_KEY } from './spec.js';
import { LABEL_KEY_RE, LABEL_LIMITS, LABEL_RULE, LABEL_VALUE_RE, TTL_MAX_SEC } from './labels.js';
import type { DriverOptionTable } from './driver-options.js';
import { MOUNTS_MAX } from './mounts.js';

/** A JSON Schema (draft-07) document or subschema. */
export type JsonSchema = boolean | { readonly [keyword: string]: unknown };

export const SCHEMA_DRAFT = 'http://json-schema.org/draft-07/schema#';

/** "512M", "2G", "1.5GiB": the units parseSize reads, in any case. */
const SIZE_UNITS = ['b', 'k', 'kb', 'kib', 'm', 'mb', 'mib', 'g', 'gb', 'gib', 't', 'tb', 'tib'];
const anyCase = (u: string) => [...u].map((c) => `[${c.toLowerCase()}${c.toUpperCase()}]`).join('');
const SIZE_PATTERN = `^\\s*\\d+(\\.\\d+)?\\s*(${SIZE_UNITS.map(anyCase).join('|')})?\\s*$`;
const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)?\\s*$';
const PORT = '([1-9]\\d{0,3}|[1-5]\\d{4}|6[0-4]\\d{3}|65[0-4]\\d{2}|655[0-2]\\d|6553[0-5])';
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d|0\\d{1,2}|00\\d)';
const ADDR = `(${OCTET}(\\.${OCTET}){3}|localhost)`;
// the host port may be 0: picked at start (a dynamic forward)
const PORT_PATTERN = `^\\s*(${ADDR}:)?(0*${PORT}|0+):0*${PORT}(/(tcp|udp))?\\s*$`;
const portNumber: JsonSchema = { oneOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string', pattern: `^0*${PORT}$` }] };
/** A host port: 0 (or left out) asks for one picked at start. */
const hostPortNumber: JsonSchema = { oneOf: [{ type: 'integer', minimum: 0, maximum: 65535 }, { type: 'string', pattern: `^(0*${PORT}|0+)$` }] };

/** The schema of each field the validator reads (config/spec.ts validateSpec). */
const CORE_FIELD_SCHEMAS: Readonly<Record<string, JsonSchema>> = {
  name: {
    description: "The instance name: 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit (it becomes the hostname).",
    type: 'string',
    minLength: 1,
    maxLength: INSTANCE_NAME_MAX,
    pattern: INSTANCE_NAME_RE.source,
  },
  image: {
    description: `The image: an alias (debian-12, ubuntu:24.04), an image id or name, a URL or a local file. Default ${DEFAULTS.image}.`,
    type: 'string',
    pattern: '\\S',
    examples: ['debian-12', 'ubuntu:24.04'],
  },
  cpus: {
    description: `Virtual CPUs, ${LIMITS.cpusMin}-${LIMITS.cpusMax}. Default ${DEFAULTS.cpus}.`,
    oneOf: [
      { type: 'integer', minimum: LIMITS.cpusMin, maximum: LIMITS.cpusMax },
      { type: 'string', pattern: '^0*([1-9]|[1-5]\\d|6[0-4])$' },
    ],
  },
  memory: {
    description: `Memory: a bare number is MiB (2048), or text with a unit ("512M", "2G"); ${LIMITS.memoryMinMiB} MiB to ${LIMITS.memoryMaxMiB / 1024} GiB. Default ${DEFAULTS.memoryMiB} MiB.`,
    oneOf: [
      { type: 'number', minimum: LIMITS.memoryMinMiB, maximum: LIMITS.memoryMaxMiB },
      { type: 'string', pattern: SIZE_PATTERN },
    ],
    examples: ['1G', '2048M', 2048],
  },
  disk: {
    description: 'Grow the overlay to this size: a bare number is GiB (20), or text with a unit ("20G"); 1M to 64T. Default: the base image\'s size.',
    oneOf: [
      { type: 'number', minimum: 1 / 1024, maximum: LIMITS.diskMaxBytes / 1024 ** 3 },
      { type: 'string', pattern: SIZE_PATTERN },
    ],
    examples: ['20G', 20],
  },
  userData: {
    description: 'A cloud-init user-data file (relative to the spec file), or user-data content (#cloud-config, a script, multipart, ...).',
    type: 'string',
    minLength: 1,
  },
  userDataText: {
    description: 'User-data content given inline (instead of a userData file).',
    type: 'string',
  },
  sshKey: {
    description: "Path of the user's ssh private key (relative to the spec file; its .pub beside it). Default: kumo's own key.",
    type: 'string',
    minLength: 1,
    examples: ['~/.ssh/id_ed25519'],
  },
  ports: {
    description: 'Port forwards from the host to the guest: "HOST:GUEST", "ADDR:HOST:GUEST", ".../udp", or objects.',
    type: 'array',
    items: {
      oneOf: [
        { type: 'string', pattern: PORT_PATTERN, examples: ['8080:80', '127.0.0.1:5353:53/udp', '0:80'] },
        {
          type: 'object',
          properties: {
            host: hostPortNumber,
            hostPort: hostPortNumber,
            guest: portNumber,
            guestPort: portNumber,
            addr: { type: 'string', pattern: `^${ADDR}$`, description: 'Host address (default 127.0.0.1).' },
            hostAddr: { type: 'string', pattern: `^${ADDR}$` },
            proto: { enum: ['tcp', 'udp'] },
            dynamic: { type: 'boolean', description: 'The host port is picked at start (as host 0 or no host).' },
          },
          additionalProperties: false,
          allOf: [{ anyOf: [{ required: ['guest'] }, { required: ['guestPort'] }] }],
        },
      ],
    },
  },
  accel: {
    description: 'CPU acceleration: auto probes KVM and falls back to TCG (software emulation).',
    enum: ['auto', 'kvm', 'tcg'],
    default: DEFAULTS.accel,
  },
  driver: {
    description: `The driver that runs the instance. Default ${DEFAULTS.driver}.`,
    type: 'string',
    pattern: '^[a-z][a-z0-9-]*$',
    default: DEFAULTS.driver,
  },
  labels: {
    description: `Labels to find the instance by (kumo list --label, kumo delete --label): ${LABEL_RULE}; at most ${LABEL_LIMITS.count}.`,
    type: 'object',
    maxProperties: LABEL_LIMITS.count,
    propertyNames: { type: 'string', maxLength: LABEL_LIMITS.keyMax, pattern: LABEL_KEY_RE.source },
    additionalProperties: { type: 'string', maxLength: LABEL_LIMITS.valueMax, pattern: LABEL_VALUE_RE.source },
    examples: [{ team: 'ci', 'suite/run': '42' }],
  },
  networks: {
    description: 'Private networks to join (made with kumo network create NAME): a second NIC and an address on each; members reach each other by name.',
    type: 'array',
    uniqueItems: true,
    items: { type: 'string', maxLength: 63, pattern: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' },
    examples: [['backend']],
  },
  ttl: {
    description: 'Time to live, from creation: then the instance is powered off and deleted. Seconds (3600) or text ("90s", "10m", "1h30m", "2d"); at most 365 days.',
    oneOf: [
      { type: 'number', exclusiveMinimum: 0, maximum: TTL_MAX_SEC },
      { type: 'string', pattern: '^\\s*(\\d+(\\.\\d+)?|(\\d+(\\.\\d+)?d)?(\\d+(\\.\\d+)?h)?(\\d+(\\.\\d+)?m)?(\\d+(\\.\\d+)?s)?)\\s*$' },
    ],
  },
  timeout: {
    description: `How long to wait for readiness: seconds (600), or text ("90s", "10m", "1h"); at most ${LIMITS.timeoutMaxSec / 3600} h. Default ${DEFAULTS.timeoutSec} s.`,
    oneOf: [
      { type: 'number', exclusiveMinimum: 0, maximum: LIMITS.timeoutMaxSec },
      { type: 'string', pattern: DURATION_PATTERN },
    ],
  },
  user: {
    description: `The guest account kumo creates. Default ${DEFAULTS.user}.`,
    type: 'string',
    pattern: USER_NAME_RE.source,
    default: DEFAULTS.user,
  },
  seedFormat: {
    description: 'The cloud-init seed: nocloud (a cidata disk; suits most images), configdrive (OpenStack config drive) or cernvm (the CernVM context layout: ec2 and openstack pairs and a readme, label config-2).',
    enum: ['nocloud', 'configdrive', 'cernvm'],
    default: DEFAULTS.seedFormat,
  },
  firmware: {
    description: 'bios unless the image only boots with UEFI.',
    enum: ['bios', 'uefi'],
    default: 'bios',
  },
  mounts: {
    description: `Shared host folders (relative to the spec file): "HOST_DIR[:GUEST_DIR][:ro]" or objects; the guest path defaults to the host path. At most ${MOUNTS_MAX}.`,
    type: 'array',
    maxItems: MOUNTS_MAX,
    items: {
      oneOf: [
        { type: 'string', pattern: '^[^:]+(:/[^:]*)?(:(ro|rw))?$', examples: ['~/src', '~/src:/src', '/data:/data:ro'] },
        {
          type: 'object',
          properties: {
            host: { type: 'string', minLength: 1, description: 'The host folder.' },
            guest: { type: 'string', pattern: '^/', description: 'Where the guest mounts it (absolute; default: the host path).' },
            readOnly: { type: 'boolean', description: 'Read-only in the guest.' },
            ro: { type: 'boolean', description: 'Same as readOnly.' },
            type: { enum: ['virtiofs', '9p'], description: 'The transport of this mount (default: mountType).' },
          },
          required: ['host'],
          additionalProperties: false,
        },
      ],
    },
  },
  mountType: {
    description: 'How the shared folders reach the guest: auto (virtiofs where virtiofsd runs, else 9p with a warning), virtiofs or 9p.',
    enum: ['auto', 'virtiofs', '9p'],
    default: 'auto',
  },
};

/**
 * The schema of each driver's option fields (config/driver-options.ts; the drivers' checks stay
 * the judges). A driver field without an entry here makes `instanceSpecSchema` throw.
 */
const DRIVER_FIELD_SCHEMAS: Readonly<Record<string, Readonly<Record<string, JsonSchema>>>> = {
  libvirt: {
    connect: {
      description: 'libvirt only: the connection URI. A spec file may not give a URI that runs a program (ext, ?command=) or turns off host verification.',
      type: 'string',
      minLength: 1,
      examples: ['qemu:///system', 'qemu:///session', 'qemu+ssh://user@host/system'],
    },
    pool: {
      description: "libvirt only: the storage pool for the instance's volumes.",
      type: 'string',
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$',
      examples: ['default'],
    },
    network: {
      description: 'libvirt only: user (forwarded ports), network:NAME (a libvirt network) or bridge:NAME.',
      anyOf: [{ type: 'string', pattern: '^((network|bridge):)?[A-Za-z0-9][A-Za-z0-9_.-]*$' }, { const: '' }, { type: 'null' }],
      examples: ['user', 'network:default', 'bridge:br0'],
    },
  },
  virtualbox: {
    ostype: {
      description: "virtualbox only: VirtualBox's guest OS type (VBoxManage list ostypes). Default Linux_64.",
      type: 'string',
      pattern: '^[A-Za-z0-9_]+$',
      examples: ['Linux_64', 'Debian_64', 'Ubuntu_64'],
    },
    vrdePort: {
      description: "virtualbox only: turn VirtualBox's remote display (VRDE) on, listening on 127.0.0.1 at this port only. Off by default.",
      anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string', pattern: '^[0-9]+$' }],
      examples: [5901],
    },
  },
};

export interface SchemaOptions {
  /** The registered drivers (driverNames()); they become the driver field's choices. */
  drivers?: readonly string[];
  /** The drivers' option fields (default: none; the CLI passes driverOptionTable() after registering the built-ins). */
  driverOptionFields?: DriverOptionTable;
}

/** The JSON Schema (draft-07) of an instance spec file. Throws when a field the validator reads has no schema entry. */
export function instanceSpecSchema(opts: SchemaOptions = {}): Record<string, unknown> {
  const properties: Record<string, JsonSchema> = {
    [SCHEMA_KEY]: { description: 'The JSON Schema of this file (for editors; kumo ignores it).', type: 'string' },
  };
  for (const f of CORE_FIELDS) {
    const s = CORE_FIELD_SCHEMAS[f];
    if (s === undefined) throw new Error(`config/schema.ts: the spec field '${f}' has no schema entry`);
    properties[f] = s;
  }
  const extra = Object.keys(CORE_FIELD_SCHEMAS).filter((f) => !CORE_FIELDS.includes(f));
  if (extra.length) throw new Error(`config/schema.ts: schema entries for fields the validator does not read: ${extra.join(', ')}`);
  if (opts.drivers?.length) properties.driver = { ...(CORE_FIELD_SCHEMAS.driver as object), enum: [...opts.drivers].sort() };

  // a driver's fields are allowed only with that driver (the validator says which driver to add)
  const allOf: JsonSchema[] = [];
  for (const [driver, fields] of Object.entries(opts.driverOptionFields ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const names = Object.keys(fields).sort();
    for (const f of names) {
      const s = DRIVER_FIELD_SCHEMAS[driver]?.[f];
      if (s === undefined) throw new Error(`config/schema.ts: the ${driver} driver's spec field '${f}' has no schema entry`);
      properties[f] = s;
    }
    if (names.length)
      allOf.push({
        if: { not: { required: ['driver'], properties: { driver: { const: driver } } } },
        then: { properties: Object.fromEntries(names.map((f) => [f, false])) },
      });
  }
  return {
    $schema: SCHEMA_DRAFT,
    title: 'kumo instance spec',
    description: 'An instance spec file for `kumo create --spec FILE` / `kumo launch --spec FILE` (YAML or JSON). See docs/instances.md.',
    type: 'object',
    properties,
    additionalProperties: false,
    ...(allOf.length ? { allOf } : {}),
  };
}

/** The schemas `kumo schema` prints, by name. */
export const SCHEMA_NAMES = ['instance-spec'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];
