/**
 * A counter store for @fastify/rate-limit on the server's injected clock (its own store reads the wall clock),
 * with a `peek` the plugin's does not have: the authentication-failure limit asks "is this source over?" before
 * authenticating, and counts only failures. Fixed windows in this process's memory, at most `maxKeys` of them
 * (the oldest window is dropped first), so a flood of new keys costs bounded memory.
 */
import type { Clock } from '../../core/clock.js';

interface Window {
  count: number;
  /** When the window ends. */
  until: number;
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

export class ClockedRateStore implements RateLimitStore {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** Counts one more for `key` in its window (a new window when the last one ended). */
  count(key: string, timeWindow: number): RateCount {
    const now = this.clock.now();
    let w = this.windows.get(key);
    if (w === undefined || w.until <= now) {
      this.windows.delete(key);
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
      w = { count: 0, until: now + timeWindow };
      this.windows.set(key, w);
    }
    w.count++;
    return { current: w.count, ttl: w.until - now };
  }

  /** The count of `key`'s current window without adding to it (0 when it has none). */
  peek(key: string): RateCount {
    const now = this.clock.now();
    const w = this.windows.get(key);
    return w === undefined || w.until <= now
      ? { current: 0, ttl: 0 }
      : { current: w.count, ttl: w.until - now };
  }

  incr(key: string, callback: (error: Error | null, result?: RateCount) => void, timeWindow: number): void {
    callback(null, this.count(key, timeWindow));
  }

  /** Each limit keeps its own keys apart by prefix (see abuse-limits.ts), so children share the windows. */
  child(): RateLimitStore {
    return this;
  }
}
