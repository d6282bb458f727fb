/**
 * The offer made on each heartbeat: a device's updates it may start now, with their releases. Direct
 * assignments are granted at once; a rollout's are granted the slots its limits allow, under the rollout's
 * lock, so the limits hold across batches and replicas. Rows move through the adapter's UpdateRows.
 */
import { sql } from 'kysely';
import { downloadRateFor, meteredBudgetFor } from '../../core/bandwidth.js';
import { deferralSpent } from '../../core/rollout/deferral.js';
import { NO_TAG_VALUE, type SlotRequest } from '../../core/rollout/dispatch.js';
import { egressFree } from '../../core/rollout/egress-slots.js';
import type { Hold } from '../../core/rollout/offer.js';
import { phaseLimits } from '../../core/rollout/phase-limits.js';
import type { RolloutSpec } from '../../core/rollout/spec.js';
import { ACTIVE_STATES } from '../../core/update-state.js';
import type { OfferOptions, Release, TimeContext, UpdateOffer } from '../store.js';
import { storedSpec } from '../stored-spec.js';
import { allocateGrants, planGrants, type WaitingUpdate } from '../update-effects.js';
import { offerExtras } from './device-windows.js';
import type { Db } from './events.js';
import { meteredBytesSince, recordMeteredDownload } from './metered-downloads.js';
import { rowToRelease } from './releases.js';
import { updatesSucceeded } from './rollout-counts.js';
import { transact } from './transact.js';
import {
  deviceTags,
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
  options: OfferOptions = {},
): Promise<Map<string, UpdateOffer[]>> {
  const offers = new Map<string, UpdateOffer[]>();
  if (deviceIds.length === 0) return offers;
  const rows = await s.rows.offerRows(deviceIds);
  if (rows.length === 0) return offers;

  const holds = new Map<string, Hold>();
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
  const specs = new Map<string, RolloutSpec>();
  for (const [rolloutId, waiting] of byRollout) {
    const spec = await grantSlots(s, rolloutId, waiting, holds, ctx, options.egressCap);
    if (spec) specs.set(rolloutId, spec);
  }
  for (const [id, spec] of await otherSpecs(s, rows, byRollout)) specs.set(id, spec);
  const forced = await forcedByBudget(s, rows, specs, ctx.now);

  const releases = await releasesOf(s, rows);
  for (const r of rows) {
    if (!OFFERABLE_STATES.includes(r.state)) continue; // skipped while granting
    const list = offers.get(r.device_id) ?? [];
    const spec = r.rollout_id === null ? undefined : specs.get(r.rollout_id);
    const hold = holds.get(r.id);
    // Every offer of the update carries the limit: the device may start or resume its download on any of them.
    const rate =
      r.purpose === 'update' ? downloadRateFor(spec?.downloadRateLimit ?? null, deviceTags(r)) : null;
    list.push({
      update: rowToUpdate(r),
      release: releases.get(r.release_id)!,
      retryAfterSec: hold?.retryAfterSec ?? null,
      ...(hold ? { holdReason: hold.reason } : {}),
      soft: spec?.action === 'soft' && !forced.has(r.id),
      ...(rate !== null ? { downloadRateLimit: rate } : {}),
      ...(spec?.adoptTuf ? { adoptTuf: true } : {}),
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

/** The specs of the rollouts among these rows not granted to just now (soft action, download limit). */
async function otherSpecs(
  s: UpdatesContext,
  rows: OfferRow[],
  granted: Map<string, OfferRow[]>,
): Promise<Map<string, RolloutSpec>> {
  const ids = [
    ...new Set(
      rows.flatMap((r) => (r.rollout_id === null || granted.has(r.rollout_id) ? [] : [r.rollout_id])),
    ),
  ];
  if (ids.length === 0) return new Map();
  const specs = await s.db.selectFrom('rollouts').select(['id', 'spec']).where('id', 'in', ids).execute();
  return new Map(specs.map((r) => [r.id, storedSpec(r.spec)]));
}

/**
 * The waiting updates with the metered budgets, device windows and deferrals their rollout honours (read only
 * when it does).
 */
async function withExtras(
  trx: Db,
  spec: RolloutSpec,
  waiting: OfferRow[],
  ctx: TimeContext,
): Promise<WaitingUpdate[]> {
  const updates = await withMeteredUse(trx, spec, waiting, ctx.now);
  if (!spec.deviceWindows && spec.deferral === null) return updates;
  const extras = await offerExtras(
    trx,
    [...new Set(waiting.map((r) => r.device_id))],
    waiting.map((r) => r.id),
    { windows: spec.deviceWindows ? ctx : null, deferrals: spec.deferral !== null },
  );
  return updates.map((u, i) => ({
    ...u,
    deviceWindows: extras.windows.get(waiting[i]!.device_id)?.windows ?? null,
    deferredUntil: extras.deferrals.get(u.id)?.deferredUntil ?? null,
  }));
}

/**
 * Each metered device's budget (its tag, else the rollout's) and what it was granted on metered links in the
 * budget's period ending now: one sum per distinct period, most often the rollout's alone.
 */
async function withMeteredUse(
  trx: Db,
  spec: RolloutSpec,
  waiting: OfferRow[],
  now: number,
): Promise<WaitingUpdate[]> {
  const updates = waiting.map(waitingUpdate);
  // A rollout that lets metered links download outright has no budget to read.
  if (spec.allowMetered === true) return updates;
  const budgets = waiting.map((r, i) =>
    updates[i]!.metered ? meteredBudgetFor(spec.meteredBudget, deviceTags(r)) : null,
  );
  const devicesByPeriod = new Map<number, string[]>();
  budgets.forEach((b, i) => {
    if (b !== null)
      devicesByPeriod.set(b.periodMs, [...(devicesByPeriod.get(b.periodMs) ?? []), waiting[i]!.device_id]);
  });
  const used = new Map<number, Map<string, number>>();
  for (const [periodMs, devices] of devicesByPeriod) {
    used.set(periodMs, await meteredBytesSince(trx, [...new Set(devices)], now - periodMs));
  }
  return updates.map((u, i) => {
    const budget = budgets[i]!;
    if (budget === null) return u.metered ? { ...u, meteredBudget: null } : u;
    return {
      ...u,
      meteredBudget: budget,
      meteredUsed: used.get(budget.periodMs)!.get(waiting[i]!.device_id) ?? 0,
    };
  });
}

/**
 * The updates of soft rollouts whose deferral budget is spent: offered as forced, so the device's consent hook
 * no longer puts them off (hawkBit's time-forced action).
 */
async function forcedByBudget(
  s: UpdatesContext,
  rows: OfferRow[],
  specs: ReadonlyMap<string, RolloutSpec>,
  now: number,
): Promise<Set<string>> {
  const budgetOf = (r: OfferRow) => {
    const spec = r.rollout_id === null ? undefined : specs.get(r.rollout_id);
    return spec?.action === 'soft' ? spec.deferral : null;
  };
  const budgeted = rows.filter((r) => budgetOf(r));
  if (budgeted.length === 0) return new Set();
  const { deferrals } = await offerExtras(
    s.db,
    [],
    budgeted.map((r) => r.id),
    { windows: null, deferrals: true },
  );
  return new Set(
    budgeted.filter((r) => deferralSpent(budgetOf(r)!, deferrals.get(r.id) ?? null, now)).map((r) => r.id),
  );
}

/**
 * Grants the slots one rollout's limits allow to its devices asking now, under the rollout's lock, so the
 * limits hold across batches and replicas. Returns the rollout's spec (undefined when it is gone).
 */
async function grantSlots(
  s: UpdatesContext,
  rolloutId: string,
  waiting: OfferRow[],
  holds: Map<string, Hold>,
  ctx: TimeContext,
  egressCap: number | undefined,
): Promise<RolloutSpec | undefined> {
  // Run again when PostgreSQL aborts it (see above); what it decided is applied once it committed.
  const decided = await transact(s.db, async (trx) => {
    const rollout = await s.rows.lockedRollout(trx, rolloutId);
    if (!rollout) return undefined;
    const plan = planGrants(rollout, await withExtras(trx, rollout.spec, waiting, ctx), ctx.now);
    if (plan.candidates.length > 0) {
      const limits = { ...rollout.spec, ...phaseLimits(rollout.spec, rollout.currentPhase) };
      const usage = await slotUsage(s, trx, rolloutId, limits, ctx.now);
      const free =
        egressCap === undefined
          ? undefined
          : egressFree(egressCap, rollout.spec.downloadRateLimit, await downloadsUnderWay(s, trx));
      allocateGrants(rollout, plan, usage, ctx.now, free);
    }
    const byId = new Map(waiting.map((r) => [r.id, r]));
    const moved = new Map<OfferRow, 'notified' | 'skipped'>();
    for (const g of plan.grants) {
      const r = byId.get(g.id)!;
      if (!(await s.rows.movePending(trx, r, 'notified', ctx, g.reason))) continue;
      moved.set(r, 'notified');
      const bytes = plan.charges.get(g.id);
      if (bytes !== undefined) {
        await recordMeteredDownload(trx, { deviceId: r.device_id, updateId: r.id, bytes }, ctx.now);
      }
    }
    for (const k of plan.skips) {
      const r = byId.get(k.id)!;
      await s.rows.movePending(trx, r, 'skipped', ctx, k.reason);
      moved.set(r, 'skipped');
    }
    return { moved, holds: plan.holds, spec: rollout.spec };
  });
  if (!decided) return undefined;
  for (const [r, state] of decided.moved) r.state = state;
  for (const [id, hold] of decided.holds) holds.set(id, hold);
  return decided.spec;
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

/**
 * Downloads under way fleet-wide, all rollouts and direct assignments: granted and not yet downloaded (a partial
 * index holds just these, 0037). Counted under a lock every granting transaction takes, on every replica, and
 * held until this one's grants commit: two rollouts granting at the same instant take turns, so the cap's slots
 * hold fleet-wide.
 */
async function downloadsUnderWay(s: UpdatesContext, trx: Db): Promise<number> {
  await s.adapter.lockNamed(trx, EGRESS_SLOTS_LOCK);
  const row = await trx
    .selectFrom('device_updates')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('purpose', '=', 'update')
    .where(sql<boolean>`state in ('notified', 'downloading')`)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

const EGRESS_SLOTS_LOCK = 'fleetd.egress_slots';
