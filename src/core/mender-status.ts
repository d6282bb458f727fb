/**
 * What a mender-client deployment status means for a FleetD update (docs/clients/mender.md). The client reports
 * `installing` again as its pre-commit check and repeats statuses after a re-authentication: repeats move nothing.
 * `already-installed` means the device runs the artifact already, which is what the update was for.
 */
import type { DeviceReportedState } from './update-state.js';

export interface MenderStatusMeaning {
  /** The state the update moves to; undefined when the status moves nothing (pauses of control maps). */
  state?: DeviceReportedState;
  error?: string;
}

export function menderStatusMeaning(status: string): MenderStatusMeaning {
  switch (status) {
    case 'downloading':
      return { state: 'downloading' };
    case 'installing':
    case 'rebooting':
      return { state: 'installing' };
    case 'success':
    case 'already-installed':
      return { state: 'succeeded' };
    case 'failure':
      return {
        state: 'failed',
        error: 'the device reported a failure (its log is in the update.device_log event)',
      };
    default:
      return {};
  }
}
