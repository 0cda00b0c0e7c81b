import type { CommandDef } from '../command.js';
import { NotFoundError } from '../../core/errors.js';

const DESCRIPTIONS: Record<string, string> = {
  'instance-spec': 'an instance spec file (kumo create/launch --spec FILE), YAML or JSON',
};

const schema: CommandDef = {
  name: 'schema',
  summary: 'print a JSON Schema kumo reads files by (for editors and checkers)',
  args: [{ name: 'name', placeholder: 'NAME', description: 'the schema to print (instance-spec); without it, the list' }],
  options: { list: { type: 'boolean', description: 'list the schemas (the default without NAME)' } },
  description:
    'Prints the JSON Schema (draft-07) of a file kumo reads, so an editor completes and checks it. The package ships the same ' +
    'file under schema/ (node_modules/kumo/schema/instance-spec.schema.json). In a YAML spec file, point the YAML language ' +
    'server at it with a first line "# yaml-language-server: $schema=PATH"; in a JSON one, with a "$schema" field. See docs/instances.md.',
  examples: ['kumo schema instance-spec > .vscode/kumo-spec.schema.json', 'kumo schema --list'],
  async run(ctx, args) {
    const { SCHEMA_NAMES, instanceSpecSchema } = await import('../../config/schema.js');
    const name = args.positionals.name as string | undefined;
    if (!name || args.options.list) {
      const rows = SCHEMA_NAMES.map((n) => ({ name: n, file: `schema/${n}.schema.json`, description: DESCRIPTIONS[n] ?? '' }));
      ctx.out.data(rows, () => ctx.out.table(rows, [{ header: 'NAME', get: (r) => r.name }, { header: 'DESCRIPTION', get: (r) => r.description }]));
      return;
    }
    if (!(SCHEMA_NAMES as readonly string[]).includes(name)) {
      const { closest } = await import('../../core/text.js');
      const near = closest(name, [...SCHEMA_NAMES]);
      throw new NotFoundError('SCHEMA_NOT_FOUND', `there is no schema named '${name}'${near.length ? `; did you mean '${near[0]}'?` : ''}`, { hint: `one of: ${SCHEMA_NAMES.join(', ')} (kumo schema --list)` });
    }
    const { driverNames } = await import('../../driver/registry.js');
    const { driverOptionTable } = await import('../../config/driver-options.js');
    const drivers = driverNames(); // registers the built-in drivers and their option fields
    ctx.out.stdout.write(`${JSON.stringify(instanceSpecSchema({ drivers, driverOptionFields: driverOptionTable() }), null, 2)}\n`);
  },
};
export default schema;
