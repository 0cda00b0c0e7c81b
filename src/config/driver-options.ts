/**
 * The spec fields that belong to one driver (libvirt's connect, pool, network), as the drivers
 * declare them. config/ knows no driver: the driver registry fills this table when it registers a
 * backend (`registerDriverOptionFields`), and the spec validator reads it (or is given a table).
 */

/** Where a field's value came from: `explicit` when the user gave it on the command line (a flag). */
export interface DriverOptionContext {
  explicit: boolean;
}

/** One driver-specific field: its CLI flag, and a pure check returning the value to store or throwing a KumoError (message + hint). */
export interface DriverOptionField {
  flag: string;
  check: (v: unknown, ctx: DriverOptionContext) => unknown;
}

/** A driver's fields by spec field name. */
export type DriverOptionFields = Readonly<Record<string, DriverOptionField>>;

/** Field tables by driver name. */
export type DriverOptionTable = Readonly<Record<string, DriverOptionFields>>;

const table: Record<string, DriverOptionFields> = {};

/** Declare (or replace) the option fields of `driver`. */
export function registerDriverOptionFields(driver: string, fields: DriverOptionFields): void {
  table[driver] = fields;
}

/** The fields every registered driver declared. */
export function driverOptionTable(): DriverOptionTable {
  return table;
}
