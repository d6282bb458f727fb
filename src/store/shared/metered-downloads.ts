/**
 * The bytes granted to devices on metered links under a rollout's `metered_budget` (core/metered-budget.ts), in
 * shared SQL: the offer sums a device's bytes of the period before it grants, and records the grant in the same
 * transaction, so a download is charged exactly when it is granted.
 */
import { BUDGET_PERIOD_LIMITS } from '../../core/metered-budget.js';
import type { Db } from './events.js';

/** Bytes granted on metered links to each of `deviceIds` after `since` (the devices with none are left out). */
export async function meteredBytesSince(
  trx: Db,
  deviceIds: string[],
  since: number,
): Promise<Map<string, number>> {
  if (deviceIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom('metered_downloads')
    .select(['device_id', (eb) => eb.fn.sum<number | string>('bytes').as('bytes')])
    .where('device_id', 'in', deviceIds)
    .where('granted_at', '>', since)
    .groupBy('device_id')
    .execute();
  return new Map(rows.map((r) => [r.device_id, Number(r.bytes)]));
}

/** Charges a granted download to its device; rows older than any budget's period go as the device's next one comes. */
export async function recordMeteredDownload(
  trx: Db,
  grant: { deviceId: string; updateId: string; bytes: number },
  at: number,
): Promise<void> {
  await trx
    .deleteFrom('metered_downloads')
    .where('device_id', '=', grant.deviceId)
    .where('granted_at', '<=', at - BUDGET_PERIOD_LIMITS.max)
    .execute();
  await trx
    .insertInto('metered_downloads')
    .values({ device_id: grant.deviceId, update_id: grant.updateId, granted_at: at, bytes: grant.bytes })
    .onConflict((oc) => oc.doNothing())
    .execute();
}
