/**
 * Records the silence of devices: a device that stops sending heartbeats becomes offline, then
 * abandoned, with an event each time, although no request arrives to tell us. Also expires remote commands.
 */
import type { Clock } from '../core/clock.js';
import type { StatusThresholds } from '../core/device.js';
import type { StatusTransition, Store } from '../store/store.js';

export interface SweeperLog {
  error(obj: unknown, msg: string): void;
}

export class StatusSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  /** When the last successful sweep ran; the first sweep after a start looks at every device. */
  private lastSweep: number | undefined;
  private lastSnapshot = Number.NEGATIVE_INFINITY;
  /** The connectivity classes the last sweep saw (docs/connectivity.md), and when devices were last resolved. */
  private lastClasses: string | undefined;
  private lastResolve = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    private readonly log: SweeperLog,
    /** How often the counts by status are recorded, for the fleet's online share over time. */
    private readonly snapshotIntervalMs = 5 * 60_000,
    /** How often devices whose tags, hardware or groups changed are moved to the connectivity class they match. */
    private readonly resolveIntervalMs = 60_000,
  ) {}

  sweep(): Promise<StatusTransition[]> {
    const run = this.running.then(async () => {
      const now = this.clock.now();
      const ctx = { now, thresholds: this.thresholds };
      // A device whose thresholds changed (its class, or its class's figures) may have gone silent before the
      // previous sweep by its new ones: then every device is looked at, not only the newly silent.
      const classes = JSON.stringify(await this.store.connectivity.list({ counts: false }));
      let resolved = 0;
      if (classes !== '[]' && now - this.lastResolve >= this.resolveIntervalMs) {
        resolved = await this.store.connectivity.resolve(ctx);
        this.lastResolve = now;
      }
      const since = classes === this.lastClasses && resolved === 0 ? this.lastSweep : undefined;
      this.lastClasses = classes;
      const moved = await this.store.sweepStatuses(ctx, since);
      this.lastSweep = now;
      // Remote commands past their deadline close here too (with an event each); none is delivered late anyway.
      await this.store.commands.expire(ctx);
      if (now - this.lastSnapshot >= this.snapshotIntervalMs) {
        // Every replica sweeps; whichever comes first records the snapshot and the others leave it at that.
        await this.store.recordFleetSnapshot(ctx, this.snapshotIntervalMs * 0.8);
        this.lastSnapshot = now;
      }
      return moved;
    });
    this.running = run.catch((error: unknown) => this.log.error({ err: error }, 'status sweep failed'));
    return run;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
