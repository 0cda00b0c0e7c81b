/**
 * The spec fields of the libvirt driver (`connect`, `pool`, `network`): each a pure check that
 * returns the value instance.json keeps or throws a KumoError with a hint. The driver registry
 * hands them to the spec validator (config/driver-options.ts).
 */
import { InvalidInputError } from '../../core/errors.js';
import type { DriverOptionFields } from '../../config/driver-options.js';
import { checkUriSafety } from './virsh.js';
import { parseNetworkOption, parsePoolOption } from './xml.js';

export const LIBVIRT_OPTION_FIELDS: DriverOptionFields = {
  connect: {
    flag: '--connect',
    check: (v, ctx) => {
      if (typeof v !== 'string' || !v) throw new InvalidInputError('LIBVIRT_URI_INVALID', 'must be a libvirt URI', { hint: 'e.g. qemu:///system, qemu:///session or qemu+ssh://user@host/system' });
      // a spec file must not run a program or turn off host verification through the URI
      checkUriSafety(v, ctx.explicit);
      return v;
    },
  },
  pool: { flag: '--pool', check: (v) => parsePoolOption(v) },
  network: {
    flag: '--network',
    check: (v) => {
      parseNetworkOption(v);
      return v;
    },
  },
};
