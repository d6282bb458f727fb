/**
 * What a hawkBit DDI feedback means for a FleetD update (docs/hawkbit-ddi.md). SWUpdate never closes an action
 * on its own after installing: it says "All Chunks Installed." and waits for a restart to report the test
 * result, so that message is an update installed and awaiting confirmation (`verifying`); only `closed` ends it.
 */
import type { DeviceReportedState } from './update-state.js';

export interface FeedbackMeaning {
  /** The state the update moves to; undefined when the feedback moves nothing (installer log lines). */
  state?: DeviceReportedState;
  /** The failure's words, for the update's error. */
  error?: string;
}

const MAX_ERROR = 1_000;

export function feedbackMeaning(feedback: {
  execution: string;
  finished: string;
  details: readonly string[];
}): FeedbackMeaning {
  const { execution, finished, details } = feedback;
  const said = (text: string) => details.some((d) => d.trim() === text);
  if (execution === 'closed') {
    if (finished === 'success') {
      // A `skip` is never sent by FleetD; a device that skipped anyway has not installed the release.
      if (said('Skipped Update.')) return { state: 'failed', error: 'the device skipped the update' };
      return { state: 'succeeded' };
    }
    if (finished === 'failure')
      return { state: 'failed', error: errorText(details, 'the device reported a failure') };
    return {};
  }
  if (execution === 'rejected' || execution === 'canceled') {
    return { state: 'failed', error: `the device reported the action ${execution}` };
  }
  if (execution === 'proceeding' || execution === 'download' || execution === 'downloaded') {
    if (said('All Chunks Installed.') || said('Update Installed, Testing Pending.'))
      return { state: 'verifying' };
    if (said('Installed Chunk.')) return { state: 'installing' };
    return { state: 'downloading' };
  }
  return {};
}

function errorText(details: readonly string[], otherwise: string): string {
  const text = details
    .map((d) => d.trim())
    .filter((d) => d !== '')
    .join('; ');
  return (text === '' ? otherwise : text).slice(0, MAX_ERROR);
}
