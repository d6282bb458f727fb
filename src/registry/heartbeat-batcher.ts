/**
 * Group commit for heartbeats: heartbeats arriving in the same turn of the event loop are written in one
 * transaction, and each is answered only after that transaction commits. Throughput of a batch, durability
 * of a single write: nothing is acknowledged before it is on disk.
 */
import type { Clock } from '../core/clock.js';
import type { StatusThresholds } from '../core/device.js';
import type { HeartbeatOutcome, PresentedHeartbeat, Store, UpdateOffer } from '../store/store.js';

export interface HeartbeatAnswer {
  outcome: HeartbeatOutcome;
  /** What is pending for the device; empty when there is nothing or the heartbeat was refused. */
  offers: UpdateOffer[];
}

interface Waiting {
  heartbeat: PresentedHeartbeat;
  resolve(answer: HeartbeatAnswer): void;
  reject(error: unknown): void;
}

export class HeartbeatBatcher {
  private queue: Waiting[] = [];
  private scheduled = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    private readonly maxBatch = 1_000,
  ) {}

  submit(heartbeat: PresentedHeartbeat): Promise<HeartbeatAnswer> {
    return new Promise((resolve, reject) => {
      this.queue.push({ heartbeat, resolve, reject });
      if (this.queue.length >= this.maxBatch) {
        void this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    try {
      const ctx = { now: this.clock.now(), thresholds: this.thresholds };
      const outcomes = await this.store.recordHeartbeats(
        batch.map((w) => w.heartbeat),
        ctx,
      );
      // Most devices have nothing pending: only those that do cost a second query.
      const withUpdates = batch
        .filter((_, i) => {
          const outcome = outcomes[i]!;
          return outcome.ok && outcome.hasOpenUpdates;
        })
        .map((w) => w.heartbeat.heartbeat.deviceId);
      const offers = await this.store.updates.offer(withUpdates, ctx);
      batch.forEach((w, i) => {
        w.resolve({ outcome: outcomes[i]!, offers: offers.get(w.heartbeat.heartbeat.deviceId) ?? [] });
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
}
