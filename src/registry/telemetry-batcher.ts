/**
 * Telemetry reports in group commit, as heartbeats are (docs/telemetry.md): reports arriving in the same turn of
 * the event loop are written in one transaction, each answered once its batch is written. Measured with
 * `node dist/bench/telemetry.js` (BENCHMARKS.md): one transaction per report was far over the ingest budget.
 */
import type { Clock } from '../core/clock.js';
import type { Store, TelemetryReport } from '../store/store.js';
import { GroupCommit } from './group-commit.js';

export class TelemetryBatcher {
  private readonly group: GroupCommit<
    { deviceId: string; report: TelemetryReport },
    { accepted: boolean; retryAfterMs: number }
  >;

  constructor(store: Store, clock: Clock, minIntervalMs: number, maxBatch = 1_000) {
    this.group = new GroupCommit(
      (items) => store.telemetry.recordBatch(items, clock.now(), minIntervalMs),
      maxBatch,
    );
  }

  submit(deviceId: string, report: TelemetryReport): Promise<{ accepted: boolean; retryAfterMs: number }> {
    return this.group.submit({ deviceId, report });
  }
}
