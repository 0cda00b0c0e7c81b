/**
 * `kumo repair [NAME]`: set instances and backends straight again (testcloud's "de-sync"): remove
 * machines of this kumo home whose instance folder is gone (orphan libvirt domains and their
 * volumes), sweep what killed captures left (their sealing copy and KUMO_HOME/tmp folder), and
 * say what to do about instances whose machine is gone.
 */
import { argString, optBool, optString, type CommandDef } from '../command.js';

const repair: CommandDef = {
  name: 'repair',
  summary: 'remove VMs whose instance folder is gone (orphan libvirt domains, sealing copies of killed captures) and report instances whose VM is gone',
  description:
    "An orphan is a machine this kumo home made (a libvirt domain carrying kumo's metadata for this home) whose instance folder was removed behind kumo's back: repair undefines it and removes the volumes kumo made for it, never a base image and never a domain kumo did not make. A running orphan is destroyed only with --force. An instance whose machine is gone needs no removal: its next 'kumo start' makes the machine again, or 'kumo delete' removes it. kumo looks where its instances are and where this home has made machines before; --connect names another libvirt URI to look at. A capture killed midway leaves its sealing copy running and its work folder in KUMO_HOME/tmp: repair stops that copy (only a process it can prove is that copy) and removes the folder, unless the instance's lock shows the capture still at work.",
  args: [{ name: 'name', description: 'only this instance name' }],
  options: {
    driver: { type: 'string', description: 'only this backend (e.g. libvirt)', placeholder: 'NAME' },
    connect: { type: 'string', description: 'libvirt only: also look at this connection URI', placeholder: 'URI' },
    force: { type: 'boolean', short: 'f', description: 'destroy running orphans too' },
  },
  examples: ['kumo list', 'kumo repair web', 'kumo repair --driver libvirt --connect qemu+ssh://me@host/system --force'],
  async run(ctx, args) {
    const lib = await import('../../instance/index.js');
    const paths = await ctx.paths();
    const driver = optString(args, 'driver');
    const connect = optString(args, 'connect');
    let driverOptions: import('../../config/spec.js').DriverOptions | undefined;
    if (connect !== undefined) {
      // The same rule as create: --connect belongs to the libvirt driver (field path + hint otherwise).
      const { driverOptionsFrom } = await import('../../config/spec.js');
      const { ValidationError } = await import('../../core/errors.js');
      const issues: { path: string; message: string; hint?: string }[] = [];
      driverOptions = driverOptionsFrom({ connect }, driver ?? '', issues);
      if (issues.length) throw new ValidationError('invalid repair options', issues);
    }
    const name = argString(args, 'name');
    // A killed capture's sealing copy and work folder (only when its instance's lock has no live holder).
    const { sweepCaptureLeftovers } = await import('../../golden/index.js');
    const captures = await sweepCaptureLeftovers(paths, name !== undefined ? { name } : {});
    const repaired = await lib.repairInstances(paths, {
      ...(name !== undefined ? { name } : {}),
      ...(driver !== undefined ? { driver } : {}),
      ...(driverOptions ? { driverOptions } : {}),
      force: optBool(args, 'force'),
      onEvent: ctx.out.events(),
      signal: ctx.signal,
    });
    ctx.out.finishProgress();
    const r = { ...repaired, captures };
    ctx.out.data(r, () => {
      for (const c of captures) ctx.out.line(`${c.instance}: removed what a killed capture left (${c.machineStopped ? 'its sealing copy and ' : ''}${c.dir})`);
      for (const o of r.removed) ctx.out.line(`${o.instance}: removed ${o.where}`);
      for (const d of r.desynced) ctx.out.line(`${d.name}: ${d.detail ? `${d.detail}; ` : ''}${d.hint}`);
      if (!r.removed.length && !r.desynced.length && !captures.length) ctx.out.note(name ? `nothing out of step for '${name}'` : 'nothing out of step: every instance has its machine and every machine its instance');
    });
  },
};
export default repair;
