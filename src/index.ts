/**
 * kumo's library API. Re-exports only: each area exports its public API from its own index.ts.
 *
 *   import { launch } from 'kumo';
 *   await using vm = await launch({ image: 'debian-12' });
 *   const r = await vm.exec('uname -a');
 */
export * from './core/errors.js';
export { setDebugSink } from './core/log.js';
export * from './events/events.js';
export * from './config/paths.js';
export { doctor, type DoctorReport, type DoctorCheck } from './host/doctor.js';
export { detectAccel, kvmUsable, type Accel, type AccelChoice } from './driver/shared/accel.js';
export * from './seed/index.js';
export * from './disk/index.js';
export * from './image/index.js';
export * from './builder/index.js';
export * from './driver/index.js';
export * from './instance/index.js';
export * from './guest/index.js';
export * from './golden/index.js';

// Drivers are registered explicitly, here for library users (the CLI does it before a command runs).
import { registerBuiltinDrivers } from './driver/registry.js';
registerBuiltinDrivers();
