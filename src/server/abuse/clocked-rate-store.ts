/**
 * A counter store for @fastify/rate-limit on the server's injected clock (its own store reads the wall clock),
 * with a `peek` the plugin's does not have: the authentication-failure limit asks "is this source over?" before
 * authenticating, and counts only failures. Fixed windows aligned on the clock (so every replica's window of a
 * key is the same one), in this process's memory, at most `maxKeys` of them (the oldest window is dropped
 * first), so a flood of new keys costs bounded memory.
 *
 * Shared by the replicas: `sync` adds to the store what this replica counted since its last sync, for the keys
 * that reached a tenth of their limit here (a device heartbeating normally never does, so the hot path costs
 * nothing), and learns what the others counted. A client spreading its requests over N replicas therefore gets
 * at most its limit plus what each replica counts between two syncs, instead of N times the limit.
 */
import type { Clock } from '../../core/clock.js';
import type { RateCountStore } from '../../store/rate-count-store.js';

interface Window {
  start: number;
  /** When the window ends. */
  until: number;
  /** Counted here. */
  count: number;
  /** Of `count`, what the store already has. */
  pushed: number;
  /** Counted by the other replicas, as of the last sync. */
  others: number;
  /** From which local count the key is shared. */
  shareFrom: number;
}

export interface RateCount {
  current: number;
  /** Milliseconds until the window ends. */
  ttl: number;
}

/** What @fastify/rate-limit calls a store (types/index.d.ts: FastifyRateLimitStore). */
export interface RateLimitStore {
  incr(
    key: string,
    callback: (error: Error | null, result?: RateCount) => void,
    timeWindow: number,
    max: number,
  ): void;
  child(routeOptions: object): RateLimitStore;
}

/** A key is shared once it has counted this share of its limit on one replica. */
const SHARE_FROM = 0.1;

export class ClockedRateStore implements RateLimitStore {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** Counts one more for `key` in its window (a new window when the last one ended). */
  count(key: string, timeWindow: number, max: number): RateCount {
    const now = this.clock.now();
    let w = this.windows.get(key);
    if (w === undefined || w.until <= now) {
      this.windows.delete(key);
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
      const start = Math.floor(now / timeWindow) * timeWindow;
      w = {
        start,
        until: start + timeWindow,
        count: 0,
        pushed: 0,
        others: 0,
        shareFrom: Math.max(1, Math.ceil(max * SHARE_FROM)),
      };
      this.windows.set(key, w);
    }
    w.count++;
    return { current: w.count + w.others, ttl: w.until - now };
  }

  /** The count of `key`'s current window without adding to it (0 when it has none). */
  peek(key: string): RateCount {
    const now = this.clock.now();
    const w = this.windows.get(key);
    return w === undefined || w.until <= now
      ? { current: 0, ttl: 0 }
      : { current: w.count + w.others, ttl: w.until - now };
  }

  /** Adds this replica's new counts of the shared keys to `shared` and learns the others' counts. */
  async sync(shared: RateCountStore): Promise<void> {
    const now = this.clock.now();
    const open = [...this.windows].filter(([, w]) => w.until > now && w.count >= w.shareFrom);
    if (open.length === 0) return;
    const adds = open.map(([key, w]) => ({
      key,
      windowStart: w.start,
      add: w.count - w.pushed,
      expiresAt: w.until,
    }));
    const counted = open.map(([, w]) => w.count);
    const totals = await shared.add(adds);
    open.forEach(([key, w], i) => {
      const total = totals.get(`${key}@${w.start}`);
      const mine = counted[i]!;
      if (total === undefined || this.windows.get(key) !== w) return;
      w.pushed = mine;
      w.others = Math.max(0, total - mine);
    });
  }

  incr(
    key: string,
    callback: (error: Error | null, result?: RateCount) => void,
    timeWindow: number,
    max: number,
  ): void {
    callback(null, this.count(key, timeWindow, max));
  }

  /** Each limit keeps its own keys apart by prefix (see abuse-limits.ts), so children share the windows. */
  child(): RateLimitStore {
    return this;
  }
}
