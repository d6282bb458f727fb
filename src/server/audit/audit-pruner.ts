/**
 * Audit retention (`fleetd server --retain-audit`, docs/audit.md), apart from the events': entries older than
 * the age kept go in bounded batches, oldest first, and the last one removed becomes the anchor `verify` starts
 * from, so what is kept still verifies. The newest entry always stays (the head is checked against it).
 */
import type { Clock } from '../../core/clock.js';
import type { Store } from '../../store/store.js';

const BATCH = 2_000;

export class AuditPruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly maxAgeMs: number,
    private readonly log?: { error(obj: unknown, msg: string): void },
  ) {}

  /** One run: removes every entry older than the age kept; returns how many went. */
  async prune(): Promise<number> {
    const before = this.clock.now() - this.maxAgeMs;
    let removed = 0;
    for (;;) {
      const n = await this.store.audit.prune(before, BATCH);
      removed += n;
      if (n < BATCH) return removed;
    }
  }

  start(intervalMs: number): void {
    this.timer ??= setInterval(() => {
      this.running = this.running
        .then(() => this.prune())
        .catch((error: unknown) => this.log?.error({ err: error }, 'audit pruning failed'));
    }, intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
