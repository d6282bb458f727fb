/**
 * A token bucket of bytes: the one pacing rule behind the server's fleet-wide egress cap, its per-download
 * limit, and the agent's download limit (docs/bandwidth.md). Pure: the caller passes the time (ms, from a
 * monotonic clock or a fake one) and does the waiting, so tests run it in virtual time.
 *
 * The bucket holds at most `burst` bytes; it refills at `bytesPerSec`. A chunk larger than what is left may
 * go once the bucket is not in debt, and its size becomes the debt: a chunk is never split and never waits
 * for more than the rate says.
 */

export class TokenBucket {
  private available: number;
  private last: number;
  /** Bytes let through so far. */
  taken = 0;

  constructor(
    readonly bytesPerSec: number,
    /** The most bytes that may leave at once after a quiet spell (default a quarter of a second's worth). */
    readonly burst: number = Math.max(1, Math.floor(bytesPerSec / 4)),
    now = 0,
  ) {
    if (!(bytesPerSec > 0) || !Number.isFinite(bytesPerSec))
      throw new RangeError('a rate must be above 0 bytes per second');
    if (!(burst >= 1)) throw new RangeError('a burst must be at least 1 byte');
    this.available = burst;
    this.last = now;
  }

  /** 0 when `bytes` may go at `now` (they are counted as taken); else the ms to wait before asking again. */
  tryTake(bytes: number, now: number): number {
    // A clock that steps back (a fake one reset) refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - this.last);
    this.available = Math.min(this.burst, this.available + (elapsed * this.bytesPerSec) / 1000);
    this.last = Math.max(this.last, now);
    if (this.available >= 0) {
      this.available -= bytes;
      this.taken += bytes;
      return 0;
    }
    return Math.max(1, Math.ceil((-this.available * 1000) / this.bytesPerSec));
  }

  /**
   * The least time (ms) any pacing by this bucket can take to let `bytes` through from a full bucket: what is
   * beyond the first burst, at the rate. The last chunk may go into debt, so the bound is on the bytes before it.
   */
  static minimumMs(bytes: number, bytesPerSec: number, burst: number, lastChunk = 0): number {
    return (Math.max(0, bytes - burst - lastChunk) * 1000) / bytesPerSec;
  }
}

/** The time a pacing loop reads and waits by: real (performance.now, setTimeout) or virtual in tests. */
export interface PacingTime {
  now(): number;
  wait(ms: number): Promise<void>;
}

/** Waits until the bucket lets `bytes` through. */
export async function takeFrom(bucket: TokenBucket, bytes: number, time: PacingTime): Promise<void> {
  for (;;) {
    const wait = bucket.tryTake(bytes, time.now());
    if (wait === 0) return;
    await time.wait(wait);
  }
}
