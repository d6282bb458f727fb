/**
 * Telemetry retention (docs/telemetry.md): raw samples older than `rawMs` and hourly aggregates older than
 * `hourlyMs` go, by the injected clock, so the series stay bounded however long the server runs.
 */
import type { Clock } from '../core/clock.js';
import type { TelemetryRetention } from '../core/telemetry.js';
import type { Store } from '../store/store.js';

export class TelemetryPruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly retention: TelemetryRetention,
    private readonly log?: { error(obj: unknown, msg: string): void },
  ) {}

  /** One run; returns the rows removed. */
  prune(): Promise<{ samples: number; hourly: number }> {
    return this.store.telemetry.prune(this.clock.now(), this.retention);
  }

  start(intervalMs: number): void {
    this.timer ??= setInterval(() => {
      this.running = this.running
        .then(() => this.prune())
        .catch((error: unknown) => this.log?.error({ err: error }, 'telemetry pruning failed'));
    }, intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
