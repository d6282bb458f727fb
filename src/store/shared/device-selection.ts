/**
 * The devices a batch command names: its ids as given (each answered, found or not), or the live devices its
 * filter matches, in id order, at most `limit`. `narrow` adds a command's own condition on the filter's rows.
 */
import type { SelectQueryBuilder } from 'kysely';
import type { FilterNode } from '../../core/filter/index.js';
import type { Database } from '../schema.js';
import type { TimeContext } from '../store.js';
import type { Db } from './events.js';
import { compileFilter } from './filter-sql.js';
import { expandFilter } from './groups.js';

export type DeviceSelection = { ids: string[] } | { filter: FilterNode };

type DeviceIdQuery = SelectQueryBuilder<Database, 'devices', { id: string }>;

export async function selectedDeviceIds(
  trx: Db,
  selection: DeviceSelection,
  ctx: TimeContext,
  limit: number,
  narrow: (q: DeviceIdQuery) => DeviceIdQuery = (q) => q,
): Promise<string[]> {
  if ('ids' in selection) return [...new Set(selection.ids)];
  const filter = (await expandFilter(trx, selection.filter)) ?? { kind: 'and', children: [] };
  const q = trx
    .selectFrom('devices')
    .select('id')
    .where((eb) => compileFilter(eb, filter, ctx))
    .where('decommissioned_at', 'is', null);
  const rows = await narrow(q).orderBy('id').limit(limit).execute();
  return rows.map((r) => r.id);
}
