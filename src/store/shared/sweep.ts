/**
 * The status sweep in shared SQL: devices gone silent are recorded offline (or abandoned) a chunk at a time,
 * each chunk one transaction with its events. Several replicas may sweep at once where rows are locked.
 */
import type { SqlContext } from '../adapter.js';
import { statusEvent, statusSweeps } from '../heartbeat-effects.js';
import type { StatusTransition, TimeContext } from '../store.js';
import type { DeviceEb } from './devices.js';
import { insertEvents } from './events.js';

/** Devices moved per sweep transaction, so a sweep never holds the write lock for long. */
export const SWEEP_CHUNK = 5_000;

export async function sweepStatuses(
  s: SqlContext,
  ctx: TimeContext,
  since?: number,
): Promise<StatusTransition[]> {
  const transitions: StatusTransition[] = [];
  const classes = await s.db
    .selectFrom('connectivity_classes')
    .select(['offline_after_ms', 'abandoned_after_ms'])
    .execute();
  for (const move of statusSweeps(ctx.thresholds, classes)) {
    for (;;) {
      const { selected, moved } = await s.db.transaction().execute(async (trx) => {
        const silent = (eb: DeviceEb) =>
          eb.and([
            eb('last_seen', '<', ctx.now - move.silentMs),
            eb('recorded_status', 'in', move.from),
            eb('decommissioned_at', 'is', null),
            move.ofClass ? eb(move.column, '=', move.silentMs) : eb(move.column, 'is', null),
          ]);
        let query = trx
          .selectFrom('devices')
          .select(['id', 'recorded_status'])
          .where(silent)
          // The same devices, in the same order, whichever database answers.
          .orderBy('id');
        // Devices silent for longer were handled by the previous sweep: only the newly silent are looked at.
        if (since !== undefined) query = query.where('last_seen', '>=', since - move.silentMs);
        // Several replicas sweep: where rows are locked each takes the rows nobody holds. A row locked by
        // another sweep is being recorded by it, one locked by a heartbeat is coming online: neither is ours to
        // move, and waiting for them could deadlock.
        if (s.adapter.supportsSkipLocked) query = query.forUpdate().skipLocked();
        const rows = await query.limit(SWEEP_CHUNK).execute();
        if (rows.length === 0) return { selected: 0, moved: [] };
        // Checked again as the rows are written: under PostgreSQL's READ COMMITTED a heartbeat may have
        // committed since the SELECT, and that device is not silent any more.
        const updated = await trx
          .updateTable('devices')
          .set({ recorded_status: move.to })
          .where(
            'id',
            'in',
            rows.map((r) => r.id),
          )
          .where(silent)
          .returning('id')
          .execute();
        const ids = new Set(updated.map((r) => r.id));
        const found = rows
          .filter((r) => ids.has(r.id))
          .map((r) => ({ deviceId: r.id, from: r.recorded_status, to: move.to }));
        await insertEvents(
          trx,
          found.map((t) => statusEvent(t.deviceId, t.from, t.to, ctx.now, move.reason)),
        );
        return { selected: rows.length, moved: found };
      });
      transitions.push(...moved);
      if (selected < SWEEP_CHUNK) break;
    }
  }
  return transitions;
}
