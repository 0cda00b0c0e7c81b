/** The harness's own test target: case 3 does what KUMO_FUZZ_SELFTEST says (hang, throw a TypeError, throw a typed error). */
import { InvalidInputError } from '../../../../src/core/errors.js';
import type { FuzzTarget } from '../harness.js';

const target: FuzzTarget = {
  cases: 10,
  longCases: 10,
  async run(_r, _ctx, i) {
    if (i !== 3) return 'ok';
    const mode = process.env.KUMO_FUZZ_SELFTEST;
    if (mode === 'hang') for (;;); // a synchronous endless loop: only the watchdog can stop it
    if (mode === 'never') return new Promise<string>(() => {}); // a promise that never settles
    if (mode === 'type') throw new TypeError('boom');
    throw new InvalidInputError('SELFTEST', 'a typed refusal');
  },
};
export default target;
