/**
 * The spec fields of the VirtualBox driver: `ostype` (VirtualBox's guest OS type, default
 * Linux_64) and `vrdePort` (turn VirtualBox's remote display on, on 127.0.0.1:PORT only; off by
 * default). Pure checks; the driver registry hands them to the spec validator.
 */
import { InvalidInputError } from '../../core/errors.js';
import type { DriverOptionFields } from '../../config/driver-options.js';

export function checkOstype(v: unknown): string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_]+$/.test(v)) throw new InvalidInputError('VBOX_SPEC_INVALID', `'${String(v)}' is not a VirtualBox OS type`, { hint: "e.g. Linux_64 (the default), Debian_64, Ubuntu_64 ('VBoxManage list ostypes')" });
  return v;
}

export function checkVrdePort(v: unknown): number {
  const p = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidInputError('VBOX_SPEC_INVALID', `VRDE port '${String(v)}' is not a port`, { hint: 'a port between 1 and 65535; the remote display listens on 127.0.0.1 only' });
  return p;
}

export const VIRTUALBOX_OPTION_FIELDS: DriverOptionFields = {
  ostype: { flag: '--ostype', check: (v) => checkOstype(v) },
  vrdePort: { flag: '--vrde-port', check: (v) => checkVrdePort(v) },
};
