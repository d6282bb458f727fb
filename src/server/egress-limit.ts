/**
 * Pacing of the artifact bytes this server sends (docs/bandwidth.md): the fleet-wide egress cap, which every
 * byte passes, so the downloads of all rollouts together never leave faster than the cap (a metered uplink, a
 * site's shared link); and a download's own limit (a rollout's `download_rate_limit` or a device's tag), one
 * per response. Both are a token bucket (core/token-bucket.ts) holding a quarter of a second of bytes, so a
 * burst is bounded too; chunks take their turn in order, so no download starves. With nginx sending the
 * bytes (--artifact-offload), limit there instead.
 */
import { Transform } from 'node:stream';
import { type PacingTime, TokenBucket, takeFrom } from '../core/token-bucket.js';

/** Real elapsed time: pacing is about the wire, not the fleet's (possibly virtual) clock. */
export const realPacingTime: PacingTime = {
  now: () => performance.now(),
  wait: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class EgressLimit {
  private readonly bucket: TokenBucket;
  private readonly time: PacingTime;
  private turn: Promise<void> = Promise.resolve();

  constructor(
    readonly bytesPerSec: number,
    /** A monotonic clock in ms: pacing is about real elapsed time, not the fleet's (possibly virtual) clock. */
    now: () => number = realPacingTime.now,
    wait: (ms: number) => Promise<void> = realPacingTime.wait,
  ) {
    if (!(bytesPerSec > 0)) throw new RangeError('an egress cap must be above 0 bytes per second');
    this.time = { now, wait };
    this.bucket = new TokenBucket(bytesPerSec, undefined, now());
  }

  /** Bytes let through, for /metrics and tests. */
  get sent(): number {
    return this.bucket.taken;
  }

  /** The most bytes that may leave at once after a quiet spell. */
  get burst(): number {
    return this.bucket.burst;
  }

  /** Resolves when `bytes` may be sent; callers are served in the order they asked. */
  take(bytes: number): Promise<void> {
    const mine = this.turn.then(() => takeFrom(this.bucket, bytes, this.time));
    this.turn = mine.catch(() => undefined);
    return mine;
  }

  /** A pass-through stream paced by this limit. */
  throttle(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.take(chunk.length).then(
          () => done(null, chunk),
          (error: unknown) => done(error as Error),
        );
      },
    });
  }
}
