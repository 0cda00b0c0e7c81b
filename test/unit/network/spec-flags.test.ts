// The spec field `networks` (config/spec.ts) and `--network` (cli/flags.ts): a plain name is a
// kumo private network; user / network:X / bridge:X stay the libvirt driver's setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateSpec } from '../../../src/config/spec.js';
import { specInput } from '../../../src/cli/flags.js';
import type { ParsedArgs } from '../../../src/cli/command.js';
import type { ValidationError } from '../../../src/core/errors.js';

test('spec networks: names kept in order; bad names, duplicates and a non-list reported with their paths', () => {
  assert.deepEqual(validateSpec({ name: 'a', networks: ['backend', 'lab'] }).networks, ['backend', 'lab']);
  assert.equal(validateSpec({ name: 'a' }).networks, undefined);
  assert.throws(
    () => validateSpec({ name: 'a', networks: ['ok', 'Bad_Name', 'ok'] }),
    (e: ValidationError) => {
      const paths = e.issues.map((i) => i.path);
      assert.deepEqual(paths, ['networks[1]', 'networks[2]']);
      assert.match(e.issues[1]!.message, /given twice/);
      return true;
    },
  );
  assert.throws(() => validateSpec({ name: 'a', networks: 'backend' as unknown as string[] }), (e: ValidationError) => e.issues[0]!.path === 'networks');
});

function args(network: string[], extra: Record<string, unknown> = {}): ParsedArgs {
  return { options: { network, ...extra } as ParsedArgs['options'], positionals: {}, rest: [] };
}

test('--network: repeatable kumo networks (over the spec file\u2019s), libvirt values still go to the libvirt option', () => {
  const o = specInput(args(['backend', 'lab']), { networks: ['base'] });
  assert.deepEqual(o.networks, ['base', 'backend', 'lab']);
  assert.equal(o.network, undefined);
  const l = specInput(args(['network:default']), {});
  assert.equal(l.network, 'network:default');
  assert.equal(l.networks, undefined);
  assert.equal(specInput(args(['user']), {}).network, 'user');
  const both = specInput(args(['bridge:br0', 'backend']), {});
  assert.equal(both.network, 'bridge:br0');
  assert.deepEqual(both.networks, ['backend']);
});
