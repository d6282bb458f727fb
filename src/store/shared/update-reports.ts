/**
 * Device reports: each checked by update-effects.ts before anything is written, then its row, its events and
 * (on success) the device's running version written in one transaction, through the adapter's UpdateRows.
 */
import { type FleetError, isFleetError } from '../../core/errors.js';
import { asCallerError } from '../db-errors.js';
import type { ReportItem, ReportOutcome, StatusReport, TimeContext } from '../store.js';
import { reportEffects } from '../update-effects.js';
import type { Db } from './events.js';
import { transact } from './transact.js';
import type { UpdatesContext } from './updates.js';

export async function report(
  s: UpdatesContext,
  deviceId: string,
  updateId: string,
  report: StatusReport,
  ctx: TimeContext,
): Promise<ReportOutcome> {
  const [result] = await reportBatch(s, [{ deviceId, updateId, report }], ctx);
  if (result instanceof Error) throw result;
  return result!;
}

/**
 * Several devices' reports, each taken or refused on its own (a refusal is its FleetError). Where reports share
 * a transaction (SQLite: group commit), a failure of the database aborts it whole, and the caller writes each
 * report again alone (see registry/group-commit.ts). Otherwise (PostgreSQL) each is its own transaction, its
 * update locked while it is checked, so a time-out or the same report sent to another replica is never
 * overwritten, and a report the database fails on fails alone: its error is its answer.
 */
export async function reportBatch(
  s: UpdatesContext,
  items: readonly ReportItem[],
  ctx: TimeContext,
): Promise<Array<ReportOutcome | Error>> {
  if (!s.adapter.reportsShareTransaction) {
    return Promise.all(
      items.map((item) =>
        transact(s.db, (trx) => reportOne(s, trx, item, ctx)).catch((error: unknown) =>
          itsOwnFailure(error, item),
        ),
      ),
    );
  }
  return s.db
    .transaction()
    .execute(async (trx) => {
      const out: Array<ReportOutcome | FleetError> = [];
      for (const item of items) out.push(await reportOne(s, trx, item, ctx).catch(refusal));
      return out;
    })
    .catch((error: unknown) => {
      // Alone, the report's failure is its answer; in a batch, the batch is written again item by item.
      if (items.length === 1) return [itsOwnFailure(error, items[0]!)];
      throw error;
    });
}

/** One report inside `trx`: checked before anything is written, so a refused one writes nothing. */
async function reportOne(
  s: UpdatesContext,
  trx: Db,
  item: ReportItem,
  ctx: TimeContext,
): Promise<ReportOutcome> {
  const row = await s.rows.reportRow(trx, item.deviceId, item.updateId);
  const effects = reportEffects(item.deviceId, item.updateId, row, item.report, ctx);
  if (!effects.write) return effects.outcome;
  await s.rows.writeReport(trx, row!, effects.set);
  await s.rows.writeEvents(trx, effects.events);
  if (effects.runsRelease) await s.rows.recordRunningVersion(trx, item.deviceId, row!.release_id, ctx.now);
  return effects.outcome;
}

/** A refused report is an answer, not a failure of the batch; anything else is. */
function refusal(error: unknown): FleetError {
  if (isFleetError(error)) return error;
  throw error;
}

/** A report's own failure as its answer: a value the database refused is the device's mistake. */
function itsOwnFailure(error: unknown, item: ReportItem): Error {
  const seen = asCallerError(error, `the report of ${item.deviceId} on update ${item.updateId}`);
  return seen instanceof Error ? seen : new Error(String(seen));
}
