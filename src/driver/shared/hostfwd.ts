/**
 * Host forwards of QEMU's user-mode networking (slirp), as the QEMU driver (argv and QMP) and the
 * libvirt driver (`virsh qemu-monitor-command --hmp`) both drive them: the rule syntax, the
 * monitor commands that add and remove a forward while the machine runs, and what their output
 * means (HMP answers nothing on success).
 */
import { KumoError } from '../../core/errors.js';
import type { PortForward } from '../driver.js';
import { PortInUseError } from '../net.js';

/** A user-mode hostfwd rule: `tcp:127.0.0.1:2222-:22`. */
export function hostfwdRule(f: PortForward): string {
  return `${f.proto}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`;
}

/** The HMP command that adds `f` to the user-mode netdev `netdev`. */
export function hostfwdAddCommand(netdev: string, f: PortForward): string {
  return `hostfwd_add ${netdev} ${hostfwdRule(f)}`;
}

/** The HMP command that removes the forward from host `f.hostAddr:f.hostPort`. */
export function hostfwdRemoveCommand(netdev: string, f: PortForward): string {
  return `hostfwd_remove ${netdev} ${f.proto}:${f.hostAddr}:${f.hostPort}`;
}

/** Whether the monitor's answer says the host side of a forward was taken. */
export function hostfwdTaken(out: string): boolean {
  return /host forwarding rule/i.test(out);
}

/** Throw the typed error a `hostfwd_add` answer stands for (nothing: it worked). */
export function checkHostfwdAdd(out: string, f: PortForward): void {
  if (!out.trim()) return;
  if (hostfwdTaken(out)) throw new PortInUseError(f.hostAddr, f.hostPort, `forward to guest port ${f.guestPort}`);
  throw new KumoError('PORT_ADD_FAILED', 'external', `QEMU could not add the forward ${hostfwdRule(f)}: ${out.trim()}`);
}

/** Throw the typed error a `hostfwd_remove` answer stands for (empty or "removed": it worked). */
export function checkHostfwdRemove(out: string, f: PortForward): void {
  if (out.trim() && !/removed/i.test(out)) {
    throw new KumoError('PORT_REMOVE_FAILED', 'external', `QEMU could not remove the forward ${hostfwdRule(f)}: ${out.trim()}`);
  }
}
