/**
 * What a device report and a heartbeat's offer do to device updates, decided once for every adapter (as
 * heartbeat-effects.ts does for the device row): which columns change, which events are written, which
 * devices are granted a slot. The adapters only read rows and write the result, in one transaction.
 */
import { meteredHold } from '../core/bandwidth.js';
import { FleetError } from '../core/errors.js';
import type { MeteredBudget } from '../core/metered-budget.js';
import { allocateSlots, type DeferReason, type SlotRequest } from '../core/rollout/dispatch.js';
import { EGRESS_HOLD_REASON, EGRESS_RETRY_AFTER_SEC } from '../core/rollout/egress-slots.js';
import { type Hold, holdFor, type OfferQuestion, type UpdatePurpose } from '../core/rollout/offer.js';
import { phaseLimits } from '../core/rollout/phase-limits.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import type { MaintenanceWindow } from '../core/rollout/window.js';
import { checkTransition, FINAL_STATES, type UpdateState } from '../core/update-state.js';
import type { DeviceUpdatesTable } from './schema.js';
import type { NewEvent, ReportOutcome, StatusReport, TimeContext, UpdateAction } from './store.js';

export function updateEvent(
  u: { id: string; deviceId: string; rolloutId: string | null },
  from: UpdateState | null,
  to: UpdateState,
  at: number,
  actor: string | null,
  reason: string | null,
  extra: Record<string, unknown> = {},
): NewEvent {
  return {
    at,
    type: `update.${to}`,
    deviceId: u.deviceId,
    rolloutId: u.rolloutId,
    actor,
    reason,
    data: { update: u.id, from, to, ...extra },
  };
}

/** The columns of a device update a report reads. */
export interface ReportRow {
  id: string;
  rollout_id: string | null;
  release_id: string;
  state: UpdateState;
  action: UpdateAction;
  last_seq: number;
  progress: number | null;
  attempts: number;
}

export type ReportEffects =
  /** Nothing to write: a repeated or late report, or an update the server has called off. */
  | { write: false; outcome: ReportOutcome }
  | {
      write: true;
      outcome: ReportOutcome;
      set: Partial<DeviceUpdatesTable>;
      events: NewEvent[];
      /** The install succeeded: the device runs the update's release now (the registry is told at once). */
      runsRelease: boolean;
    };

/** Throws NOT_FOUND or TRANSITION_NOT_ALLOWED, before anything is written, for a report that cannot be taken. */
export function reportEffects(
  deviceId: string,
  updateId: string,
  row: ReportRow | undefined,
  report: StatusReport,
  ctx: TimeContext,
): ReportEffects {
  if (!row) throw new FleetError('NOT_FOUND', `update ${updateId} is not one of this device's updates`);
  const state = row.state;
  if (report.seq <= Number(row.last_seq)) return { write: false, outcome: { accepted: false, state } };
  if (state === 'cancelled') return { write: false, outcome: { accepted: false, state } };
  if ((state === 'pending' || state === 'scheduled') && report.state !== 'failed') {
    // The slot is the server's to give: work reported before it was granted would break the limits.
    throw new FleetError(
      'TRANSITION_NOT_ALLOWED',
      `update ${updateId} has not been granted a download slot yet (it is ${state}); wait for the offer`,
      { from: state, to: report.state },
    );
  }
  checkTransition(state, report.state);
  const set: Partial<DeviceUpdatesTable> = {
    state: report.state,
    last_seq: report.seq,
    progress: report.progress ?? (report.state === 'succeeded' ? 100 : row.progress),
    error: report.error ?? null,
    updated_at: ctx.now,
  };
  if (FINAL_STATES.has(report.state)) set.finished_at = ctx.now;
  if (report.state === 'failed') set.attempts = Number(row.attempts) + 1;
  // Progress reports are frequent and say nothing new about the state: they update the row only.
  const events =
    report.state === state
      ? []
      : [
          updateEvent(
            { id: row.id, deviceId, rolloutId: row.rollout_id },
            state,
            report.state,
            ctx.now,
            `device:${deviceId}`,
            report.error ?? 'reported by device',
            { seq: report.seq },
          ),
        ];
  return {
    write: true,
    outcome: { accepted: true, state: report.state },
    set,
    events,
    runsRelease: report.state === 'succeeded' && row.action !== 'download_only',
  };
}

/** The registry's firmware follows a succeeded install: the event that says so. */
export function firmwareChangedEvent(
  deviceId: string,
  from: string | null,
  to: string,
  at: number,
): NewEvent {
  return {
    at,
    type: 'device.firmware_changed',
    deviceId,
    rolloutId: null,
    actor: `device:${deviceId}`,
    reason: 'update succeeded',
    data: { from, to },
  };
}

/** A rollout's waiting update as the offer reads it. */
export interface WaitingUpdate {
  id: string;
  phase: number;
  purpose: UpdatePurpose;
  action: string;
  notBefore: number | null;
  createdAt: number;
  slotKey: string | null;
  deviceZone: string | null;
  deviceFirmware: string | null;
  /** The version of the update's release. */
  version: string;
  /** The release's size in bytes, and whether the device is on a metered link (core/bandwidth.ts). */
  releaseSize: number;
  metered: boolean;
  /** The device's own windows, read when the rollout honours them (`window: device_defined`). */
  deviceWindows?: readonly MaintenanceWindow[] | null;
  /** Until when the device deferred this update, read when the rollout has a deferral budget. */
  deferredUntil?: number | null;
  /** A metered device's budget (its `metered_budget` tag, else the rollout's; null: none), when read. */
  meteredBudget?: MeteredBudget | null;
  /** Bytes granted to the device on metered links in its budget's period, read with the budget. */
  meteredUsed?: number;
}

export interface GrantPlan {
  /** Held back: why, and when to ask again. */
  holds: Map<string, Hold>;
  /** pending → notified, with the reason for its event. */
  grants: Array<{ id: string; reason: string }>;
  /** pending → skipped: the device already runs the release. */
  skips: Array<{ id: string; reason: string }>;
  /** Free to start: they compete for the rollout's download slots (see `allocateGrants`). */
  candidates: WaitingUpdate[];
  /** Candidates let through by the metered budget: the bytes charged to their device once granted. */
  charges: Map<string, number>;
}

type OfferedRollout = OfferQuestion['rollout'] & {
  spec: OfferQuestion['rollout']['spec'] &
    Required<Pick<SlotRequest, 'maxConcurrent' | 'maxConcurrentPer' | 'rate'>> &
    Pick<RolloutSpec, 'phases' | 'allowMetered' | 'meteredBudget'> &
    Partial<Pick<RolloutSpec, 'deviceWindows'>>;
};

/**
 * Devices of one rollout asking to start: each is held (not its phase, outside its window, backing off…),
 * goes without a slot (a switch or a return to the previous version downloads nothing), is skipped (it
 * already runs the release), or becomes a candidate for a download slot.
 */
export function planGrants(
  rollout: OfferedRollout,
  waiting: readonly WaitingUpdate[],
  now: number,
): GrantPlan {
  const plan: GrantPlan = { holds: new Map(), grants: [], skips: [], candidates: [], charges: new Map() };
  for (const u of waiting) {
    const hold = holdFor({
      rollout,
      update: { phase: u.phase, notBefore: u.notBefore, purpose: u.purpose },
      deviceZone: u.deviceZone,
      deviceWindows: u.deviceWindows ?? null,
      deferredUntil: u.deferredUntil ?? null,
      now,
    });
    if (hold) plan.holds.set(u.id, hold);
    else if (u.purpose !== 'update')
      plan.grants.push({ id: u.id, reason: u.purpose === 'switch' ? 'switch now' : 'roll back now' });
    else if (u.action === 'install' && u.deviceFirmware === u.version)
      plan.skips.push({ id: u.id, reason: `already runs ${u.version}` });
    else {
      // Before a slot: a device waiting for an unmetered link must not keep one from a device that can download.
      const meteredBudget = u.meteredBudget === undefined ? rollout.spec.meteredBudget : u.meteredBudget;
      const budget =
        u.metered && meteredBudget !== null ? { budget: meteredBudget, used: u.meteredUsed ?? 0 } : null;
      const metered = meteredHold(rollout.spec.allowMetered, u.releaseSize, u.metered, budget);
      if (metered) plan.holds.set(u.id, metered);
      else {
        plan.candidates.push(u);
        if (budget) plan.charges.set(u.id, u.releaseSize);
      }
    }
  }
  return plan;
}

/**
 * Hands the plan's candidates the slots the rollout's limits allow, longest waiting first within the earliest
 * phase, within the limits of the current phase. `usage` is read under the rollout's lock, so the limits hold across batches and replicas.
 * `egressFree` is how many more downloads the server's egress cap serves (core/rollout/egress-slots.ts); the
 * granted beyond it are held.
 */
export function allocateGrants(
  rollout: OfferedRollout,
  plan: GrantPlan,
  usage: Pick<SlotRequest, 'inProgress' | 'inProgressPer' | 'succeeded' | 'offeredThisMinute'>,
  now: number,
  egressFree: number = Number.POSITIVE_INFINITY,
): void {
  const candidates = [...plan.candidates].sort((a, b) => a.phase - b.phase || a.createdAt - b.createdAt);
  const decision = allocateSlots({
    candidates: candidates.map((c) => ({ id: c.id, tagValue: c.slotKey })),
    ...usage,
    ...phaseLimits(rollout.spec, rollout.currentPhase),
    maxConcurrentPer: rollout.spec.maxConcurrentPer,
    now,
  });
  decision.granted.forEach((id, i) => {
    if (i < egressFree) plan.grants.push({ id, reason: 'download slot granted' });
    else plan.holds.set(id, { reason: EGRESS_HOLD_REASON, retryAfterSec: EGRESS_RETRY_AFTER_SEC });
  });
  for (const d of decision.deferred)
    plan.holds.set(d.id, { reason: DEFER_REASONS[d.reason], retryAfterSec: d.retryAfterSec });
}

const DEFER_REASONS: Record<DeferReason, string> = {
  max_concurrent: 'no free download slot (max_concurrent)',
  max_concurrent_per: 'no free download slot for its tag value (max_concurrent_per)',
  rate: "the rollout's rate for this minute is spent",
};
