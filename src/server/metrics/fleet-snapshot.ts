/**
 * The fleet-wide figures /metrics shows, read from the store's fleet stats (the same aggregate queries as
 * `fleetd fleet stats`) and kept for a short time: Prometheus scrapes every 15–60 s, often from two servers,
 * and a 1,000,000-device fleet should not be counted once per scrape. Concurrent scrapes share one reading, and
 * once the first reading is done a scrape is answered from the cache while the next one runs (bench/metrics.ts:
 * a reading took ~0.5 s on 100,000 devices on a loaded machine, a cached scrape ~5 ms).
 */
import type { Clock } from '../../core/clock.js';
import type { StatusThresholds } from '../../core/device.js';
import { OPEN_ROLLOUT_STATES, type RolloutState } from '../../core/rollout/rollout-state.js';
import type { FleetStats, PhaseStateCount, Store } from '../../store/store.js';

export interface FleetSnapshot {
  at: number;
  /** How long reading it took, in seconds. */
  readSeconds: number;
  stats: FleetStats;
  rollouts: Array<{ id: string; state: RolloutState; counts: PhaseStateCount[] }>;
  webhooks: Array<{ id: string; backlog: number; lagSeconds: number; failures: number; disabled: boolean }>;
}

/** No tag is asked for: fleet stats then counts no tag at all (the key cannot exist, `tag.` keys are non-empty). */
const NO_TAGS = [''];
/** Open rollouts whose updates are shown one by one; there are few, this bounds a runaway. */
const MAX_ROLLOUTS = 100;
const MAX_WEBHOOKS = 100;

export class FleetSnapshotCache {
  private current: FleetSnapshot | undefined;
  private reading: Promise<FleetSnapshot> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    private readonly ttlMs: number,
  ) {}

  /**
   * The figures: fresh ones while they are younger than the cache time; after that the previous ones at once
   * while a new reading runs (a scrape never waits on a large fleet's counts but for the first one). A cache
   * time of 0 turns the cache off: every call reads.
   */
  get(): Promise<FleetSnapshot> {
    const now = this.clock.now();
    const current = this.current;
    if (current && now - current.at < this.ttlMs) return Promise.resolve(current);
    const reading = this.refresh(now);
    return current && this.ttlMs > 0 ? Promise.resolve(current) : reading;
  }

  /** The reading under way, if any: tests and benchmarks wait for it. */
  settled(): Promise<unknown> {
    return this.reading ?? Promise.resolve();
  }

  private refresh(now: number): Promise<FleetSnapshot> {
    this.reading ??= this.read(now).finally(() => {
      this.reading = undefined;
    });
    // A failed background reading leaves the previous figures; the next scrape tries again.
    this.reading.catch(() => undefined);
    return this.reading;
  }

  private async read(now: number): Promise<FleetSnapshot> {
    const started = performance.now();
    const stats = await this.store.fleetStats(undefined, NO_TAGS, { now, thresholds: this.thresholds });
    const open = await this.store.rollouts.list({ states: OPEN_ROLLOUT_STATES, limit: MAX_ROLLOUTS });
    const rollouts = [];
    for (const r of open)
      rollouts.push({ id: r.id, state: r.state, counts: await this.store.rollouts.counts(r.id) });
    const webhooks = [];
    for (const w of (await this.store.webhooks.list()).slice(0, MAX_WEBHOOKS)) {
      const backlog = w.disabledAt === null ? await this.store.webhooks.lag(w.id) : 0;
      // The age of the oldest event this webhook has not had yet: how far behind its receiver is.
      const [next] = backlog > 0 ? await this.store.listEvents({ after: w.cursor, limit: 1 }) : [];
      webhooks.push({
        id: w.id,
        backlog,
        lagSeconds: next ? Math.max(0, (now - next.at) / 1_000) : 0,
        failures: w.failures,
        disabled: w.disabledAt !== null,
      });
    }
    this.current = { at: now, readSeconds: (performance.now() - started) / 1_000, stats, rollouts, webhooks };
    return this.current;
  }
}
