/**
 * How many of a rollout's device updates are in each phase, purpose and state. The engine asks on every pass
 * and the offer on every slot grant, so on SQLite the answer is read from `rollout_counts`, which triggers keep
 * in step with every write (migration 0007, `adapter.keepsRolloutCounts`); PostgreSQL counts the rows through its
 * indexes, since shared counter rows would make its replicas queue behind each other.
 */
import type { UpdatePurpose } from '../../core/rollout/offer.js';
import { ACTIVE_STATES, type UpdateState } from '../../core/update-state.js';
import type { DialectAdapter } from '../adapter.js';
import type { PhaseStateCount } from '../store.js';
import type { Db } from './events.js';

const ACTIVE: UpdateState[] = [...ACTIVE_STATES];

export async function rolloutCounts(
  db: Db,
  adapter: DialectAdapter,
  rolloutId: string,
): Promise<PhaseStateCount[]> {
  const rows = adapter.keepsRolloutCounts
    ? await db
        .selectFrom('rollout_counts')
        .select(['phase', 'purpose', 'state', 'n'])
        .where('rollout_id', '=', rolloutId)
        .where('n', '>', 0)
        .execute()
    : await db
        .selectFrom('device_updates')
        .select(['phase', 'purpose', 'state', (eb) => eb.fn.countAll<number>().as('n')])
        .where('rollout_id', '=', rolloutId)
        .groupBy(['phase', 'purpose', 'state'])
        .execute();
  return rows.map((r) => ({
    phase: Number(r.phase),
    purpose: r.purpose,
    state: r.state,
    count: Number(r.n),
  }));
}

/** Updates of the rollout (purpose `update`) holding a download slot now. */
export function updatesInProgress(db: Db, adapter: DialectAdapter, rolloutId: string): Promise<number> {
  return countUpdates(db, adapter, rolloutId, ACTIVE, 'update');
}

/** Updates of the rollout, of any purpose, that succeeded (a growing `rate` counts them). */
export function updatesSucceeded(db: Db, adapter: DialectAdapter, rolloutId: string): Promise<number> {
  return countUpdates(db, adapter, rolloutId, ['succeeded'], null);
}

/** Updates of the rollout in these states (of one purpose, or any): summed counts where kept, counted rows else. */
async function countUpdates(
  db: Db,
  adapter: DialectAdapter,
  rolloutId: string,
  states: UpdateState[],
  purpose: UpdatePurpose | null,
): Promise<number> {
  const row = adapter.keepsRolloutCounts
    ? await db
        .selectFrom('rollout_counts')
        .select((eb) => eb.fn.sum<number>('n').as('n'))
        .where('rollout_id', '=', rolloutId)
        .where('state', 'in', states)
        .$if(purpose !== null, (q) => q.where('purpose', '=', purpose!))
        .executeTakeFirst()
    : await db
        .selectFrom('device_updates')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('rollout_id', '=', rolloutId)
        .where('state', 'in', states)
        .$if(purpose !== null, (q) => q.where('purpose', '=', purpose!))
        .executeTakeFirst();
  return Number(row?.n ?? 0);
}
