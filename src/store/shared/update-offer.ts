/**
 * The offer made on each heartbeat: a device's updates it may start now, with their releases. Direct
 * assignments are granted at once; a rollout's are granted the slots its limits allow, under the rollout's
 * lock, so the limits hold across batches and replicas. Rows move through the adapter's UpdateRows.
 */
import { NO_TAG_VALUE, type SlotRequest } from '../../core/rollout/dispatch.js';
import type { RolloutSpec } from '../../core/rollout/spec.js';
import { ACTIVE_STATES } from '../../core/update-state.js';
import type { Release, TimeContext, UpdateOffer } from '../store.js';
import { storedSpec } from '../stored-spec.js';
import { allocateGrants, planGrants } from '../update-effects.js';
import type { Db } from './events.js';
import { rowToRelease } from './releases.js';
import { updatesSucceeded } from './rollout-counts.js';
import { transact } from './transact.js';
import {
  OFFERABLE_STATES,
  type OfferRow,
  rowToUpdate,
  type UpdatesContext,
  waitingUpdate,
} from './updates.js';

type SlotUsage = Pick<SlotRequest, 'inProgress' | 'inProgressPer' | 'succeeded' | 'offeredThisMinute'>;

export async function offer(
  s: UpdatesContext,
  deviceIds: string[],
  ctx: TimeContext,
): Promise<Map<string, UpdateOffer[]>> {
  const offers = new Map<string, UpdateOffer[]>();
  if (deviceIds.length === 0) return offers;
  const rows = await s.rows.offerRows(deviceIds);
  if (rows.length === 0) return offers;

  const holds = new Map<string, number>();
  const direct = rows.filter((r) => r.state === 'pending' && r.rollout_id === null);
  if (direct.length > 0) {
    // Run again when PostgreSQL aborts it (a deadlock with a rollout superseding these rows): the rows learn
    // their new state only from the run that committed.
    const granted = await transact(s.db, async (trx) => {
      const moved: OfferRow[] = [];
      for (const r of direct) {
        if (await s.rows.movePending(trx, r, 'notified', ctx, 'offered on heartbeat')) moved.push(r);
      }
      return moved;
    });
    for (const r of granted) r.state = 'notified';
  }
  const byRollout = new Map<string, OfferRow[]>();
  for (const r of rows) {
    if (r.state !== 'pending' || r.rollout_id === null) continue;
    const list = byRollout.get(r.rollout_id);
    if (list) list.push(r);
    else byRollout.set(r.rollout_id, [r]);
  }
  const soft = new Set<string>();
  for (const [rolloutId, waiting] of byRollout) {
    if (await grantSlots(s, rolloutId, waiting, holds, ctx)) soft.add(rolloutId);
  }
  for (const id of await softRollouts(s, rows, byRollout)) soft.add(id);

  const releases = await releasesOf(s, rows);
  for (const r of rows) {
    if (!OFFERABLE_STATES.includes(r.state)) continue; // skipped while granting
    const list = offers.get(r.device_id) ?? [];
    list.push({
      update: rowToUpdate(r),
      release: releases.get(r.release_id)!,
      retryAfterSec: holds.get(r.id) ?? null,
      soft: r.rollout_id !== null && soft.has(r.rollout_id),
    });
    offers.set(r.device_id, list);
  }
  return offers;
}

async function releasesOf(s: UpdatesContext, rows: readonly OfferRow[]): Promise<Map<string, Release>> {
  const missing = [...new Set(rows.map((r) => r.release_id))].filter((id) => !s.releaseCache.has(id));
  if (missing.length > 0) {
    if (s.releaseCache.size > 1_000) s.releaseCache.clear();
    const found = await s.db.selectFrom('releases').selectAll().where('id', 'in', missing).execute();
    for (const row of found) s.releaseCache.set(row.id, rowToRelease(row));
  }
  return s.releaseCache;
}

/** The rollouts among these rows, not granted to just now, whose action is soft (the device may defer). */
async function softRollouts(
  s: UpdatesContext,
  rows: OfferRow[],
  granted: Map<string, OfferRow[]>,
): Promise<Set<string>> {
  const ids = [
    ...new Set(
      rows.flatMap((r) => (r.rollout_id === null || granted.has(r.rollout_id) ? [] : [r.rollout_id])),
    ),
  ];
  if (ids.length === 0) return new Set();
  const specs = await s.db.selectFrom('rollouts').select(['id', 'spec']).where('id', 'in', ids).execute();
  return new Set(specs.filter((r) => storedSpec(r.spec).action === 'soft').map((r) => r.id));
}

/**
 * Grants the slots one rollout's limits allow to its devices asking now, under the rollout's lock, so the
 * limits hold across batches and replicas. True when the rollout's action is soft.
 */
async function grantSlots(
  s: UpdatesContext,
  rolloutId: string,
  waiting: OfferRow[],
  holds: Map<string, number>,
  ctx: TimeContext,
): Promise<boolean> {
  // Run again when PostgreSQL aborts it (see above); what it decided is applied once it committed.
  const decided = await transact(s.db, async (trx) => {
    const rollout = await s.rows.lockedRollout(trx, rolloutId);
    if (!rollout) return undefined;
    const plan = planGrants(rollout, waiting.map(waitingUpdate), ctx.now);
    if (plan.candidates.length > 0) {
      allocateGrants(rollout, plan, await slotUsage(s, trx, rolloutId, rollout.spec, ctx.now), ctx.now);
    }
    const byId = new Map(waiting.map((r) => [r.id, r]));
    const moved = new Map<OfferRow, 'notified' | 'skipped'>();
    for (const g of plan.grants) {
      const r = byId.get(g.id)!;
      if (await s.rows.movePending(trx, r, 'notified', ctx, g.reason)) moved.set(r, 'notified');
    }
    for (const k of plan.skips) {
      const r = byId.get(k.id)!;
      await s.rows.movePending(trx, r, 'skipped', ctx, k.reason);
      moved.set(r, 'skipped');
    }
    return { moved, holds: plan.holds, soft: rollout.spec.action === 'soft' };
  });
  if (!decided) return false;
  for (const [r, state] of decided.moved) r.state = state;
  for (const [id, sec] of decided.holds) holds.set(id, sec);
  return decided.soft;
}

/** What the rollout's limits are measured against: updates holding a slot now, and offers this minute. */
async function slotUsage(
  s: UpdatesContext,
  trx: Db,
  rolloutId: string,
  spec: RolloutSpec,
  now: number,
): Promise<SlotUsage> {
  const usage: SlotUsage = { inProgress: await s.rows.inProgress(trx, rolloutId) };
  if (spec.maxConcurrentPer) {
    const per = await trx
      .selectFrom('device_updates')
      .select(['slot_key', (eb) => eb.fn.countAll<number>().as('n')])
      .where('rollout_id', '=', rolloutId)
      .where('purpose', '=', 'update')
      .where('state', 'in', [...ACTIVE_STATES])
      .groupBy('slot_key')
      .execute();
    usage.inProgressPer = Object.fromEntries(per.map((p) => [p.slot_key ?? NO_TAG_VALUE, Number(p.n)]));
  }
  if (spec.rate) {
    const minuteStart = now - (((now % 60_000) + 60_000) % 60_000);
    const offered = await trx
      .selectFrom('device_updates')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('rollout_id', '=', rolloutId)
      .where('granted_at', '>=', minuteStart)
      .executeTakeFirstOrThrow();
    usage.offeredThisMinute = Number(offered.n);
    if (spec.rate.afterSuccesses !== null) {
      usage.succeeded = await updatesSucceeded(trx, s.adapter, rolloutId);
    }
  }
  return usage;
}
