/** FleetD as a library: start a server in-process, or use the core rules. */
export { type Clock, ManualClock, systemClock } from './core/clock.js';
export { DEFAULT_THRESHOLDS, type Device, type DeviceStatus, deviceStatus } from './core/device.js';
export { FleetError } from './core/errors.js';
export { type RunningServer, type ServerOptions, startServer } from './server/serve.js';
