/**
 * Device reports in group commit, as heartbeats are: reports arriving in the same turn of the event loop are
 * checked and written together (one transaction on SQLite), each answered once its batch is written. A
 * refused report (unknown update, a transition the rules forbid) is refused alone, and so is one the database
 * cannot store (its batch is written again report by report).
 */
import type { Clock } from '../core/clock.js';
import type { StatusThresholds } from '../core/device.js';
import type { ReportItem, ReportOutcome, Store } from '../store/store.js';
import { GroupCommit } from './group-commit.js';

export class ReportBatcher {
  private readonly group: GroupCommit<ReportItem, ReportOutcome | Error>;
  /** Reports the store took so far (the metrics' counter). */
  accepted = 0;

  constructor(store: Store, clock: Clock, thresholds: StatusThresholds, maxBatch = 1_000) {
    this.group = new GroupCommit(
      (items) => store.updates.reportBatch(items, { now: clock.now(), thresholds }),
      maxBatch,
    );
  }

  /** The store's answer to the report; throws the error that refused it (a FleetError when it is the device's). */
  async submit(item: ReportItem): Promise<ReportOutcome> {
    const result = await this.group.submit(item);
    if (result instanceof Error) throw result;
    this.accepted++;
    return result;
  }
}
