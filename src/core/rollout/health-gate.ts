/**
 * The health gate (docs/health-gates.md): a phase's updated devices are watched for a soak window after their
 * update succeeded, because a release can install fine and then break the device. A device counts as succeeded
 * only once its heartbeat has reported the new version after the update, it has kept heartbeating and its
 * reboots and application crashes stayed within the limits, for the whole soak. Pure: the store counts the
 * devices in each class (`HealthSample`), this module says what the counts mean for the gate.
 */
import type { StateCounts } from './counts.js';

export interface HealthPolicy {
  /** How long each updated device is watched after its update succeeded. */
  soakMs: number;
  /**
   * Silent this long after updating = went dark; null: the device's offline threshold, its connectivity class's
   * (docs/connectivity.md) or else the server's.
   */
  darkAfterMs: number | null;
  /** More reboots than this since the update = unhealthy; null: not judged. */
  maxReboots: number | null;
  /** More application crashes than this since the update = unhealthy; null: not judged. */
  maxAppCrashes: number | null;
  /**
   * Halt when the share of updated devices that crashed at all exceeds the share among the devices not yet
   * updated (the control group) by more than this many percentage points; null: not compared.
   */
  crashRateMargin: number | null;
}

/**
 * A phase's succeeded updates sorted into classes, each device in the first that applies (in this order), and
 * the control group. `succeeded` is all of them; what is left after the classes is healthy and soaked.
 */
export interface HealthSample {
  succeeded: number;
  /** Heartbeat after the update reports another version than the release: a silent A/B fallback. */
  fellBack: number;
  /** No heartbeat for `darkAfterMs` (or the device's offline threshold). */
  dark: number;
  /** Reboots or crashes over the limits. */
  crashing: number;
  /** No heartbeat since the update succeeded yet: the new version is not confirmed. */
  unconfirmed: number;
  /** Healthy so far, soak window not over. */
  soaking: number;
  /** Updated devices (confirmed) that reported at least one application crash, and how many were confirmed. */
  updatedCrashed: number;
  updatedConfirmed: number;
  /** Online devices of the rollout not updated yet, and how many of them reported at least one crash. */
  control: number;
  controlCrashed: number;
}

export const EMPTY_HEALTH_SAMPLE: HealthSample = {
  succeeded: 0,
  fellBack: 0,
  dark: 0,
  crashing: 0,
  unconfirmed: 0,
  soaking: 0,
  updatedCrashed: 0,
  updatedConfirmed: 0,
  control: 0,
  controlCrashed: 0,
};

export function unhealthyCount(s: HealthSample): number {
  return s.fellBack + s.dark + s.crashing;
}

/**
 * The phase's counts as the success-rate gate must see them: unhealthy devices are failures, devices still
 * soaking or unconfirmed have not finished (they count as `verifying`), the rest stay succeeded.
 */
export function healthAdjustedCounts(counts: StateCounts, s: HealthSample): StateCounts {
  const unhealthy = unhealthyCount(s);
  const open = s.unconfirmed + s.soaking;
  return {
    ...counts,
    succeeded: Math.max(0, (counts.succeeded ?? 0) - unhealthy - open),
    failed: (counts.failed ?? 0) + unhealthy,
    verifying: (counts.verifying ?? 0) + open,
  };
}

const pct = (n: number) => `${Math.round(n * 10) / 10}%`;

/** Why devices counted as failures, e.g. "2 went dark after updating, 1 fell back to the previous version". */
export function healthReasons(s: HealthSample): string[] {
  const reasons: string[] = [];
  if (s.dark > 0) reasons.push(`${s.dark} went dark after updating`);
  if (s.fellBack > 0) reasons.push(`${s.fellBack} fell back to another version after updating`);
  if (s.crashing > 0) reasons.push(`${s.crashing} rebooted or crashed over the limit`);
  return reasons;
}

/**
 * The comparison with the control group: a halt reason when the updated devices crash more often than the
 * devices not yet updated by more than the margin, else null. Judged only with devices on both sides.
 */
export function crashRateVerdict(policy: HealthPolicy, s: HealthSample): string | null {
  if (policy.crashRateMargin === null || s.updatedConfirmed === 0 || s.control === 0) return null;
  const updated = (s.updatedCrashed * 100) / s.updatedConfirmed;
  const control = (s.controlCrashed * 100) / s.control;
  if (updated <= control + policy.crashRateMargin) return null;
  return `crash rate ${pct(updated)} of updated devices is above the control group's ${pct(control)} by more than ${policy.crashRateMargin} points`;
}
