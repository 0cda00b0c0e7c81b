import type { CommandDef } from '../command.js';

const doctor: CommandDef = {
  name: 'doctor',
  summary: 'check what kumo needs on this host (QEMU, KVM, tools, disk space)',
  description: 'Runs every check and prints what was found, with a fix for anything missing. KVM is tested with a real probe guest, not just the presence of /dev/kvm. Exits 0 when the QEMU driver can run, 6 otherwise.',
  examples: ['kumo doctor', 'kumo doctor --json | jq .checks'],
  async run(ctx) {
    const { doctor: check } = await import('../../host/doctor.js');
    const report = await check({ home: ctx.globals.home });
    const { out } = ctx;
    out.data(report, () => {
      const mark = { ok: out.paint('green', 'ok'), warn: out.paint('yellow', 'warn'), missing: out.paint('red', 'missing'), error: out.paint('red', 'error') };
      out.table(report.checks, [
        { header: 'CHECK', get: (c) => c.name },
        { header: 'STATUS', get: (c) => mark[c.status] },
        { header: 'FOUND', get: (c) => c.found },
      ]);
      const fixes = report.checks.filter((c) => c.hint);
      if (fixes.length) {
        out.line('');
        for (const c of fixes) out.line(`${c.name}: ${c.hint} (needed for ${c.neededFor})`);
      }
      out.line('');
      out.line(report.ready ? 'kumo can launch VMs here.' : 'kumo cannot launch VMs here yet: fix the items above.');
    });
    return report.ready ? 0 : 6;
  },
};
export default doctor;
