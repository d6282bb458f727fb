/**
 * Background care of the blob folder. A slow scrub re-hashes the stored blobs of releases and of their variants
 * one after another, at a bounded average rate (bytes per second of the injected clock), and records each newly
 * found damaged blob as an `artifact.corrupted` event; and temp files orphaned by a crash or a cut-off upload are swept.
 */
import type { Clock } from '../core/clock.js';
import type { Store } from '../store/store.js';
import { type FsBlobStore, TEMP_MAX_AGE_MS } from './blob-store.js';
import { blobsOf, type DamagedBlob, damageEvent, damageOf } from './blob-verify.js';

export interface ScrubberLog {
  error(obj: unknown, msg: string): void;
  info(obj: unknown, msg: string): void;
}

export interface ScrubberOptions {
  /** Average bytes re-hashed per second; 0 turns the scrub off (temp files are still swept). */
  bytesPerSec: number;
  /** Temp files not written for this long are removed. */
  tempMaxAgeMs?: number;
}

export interface ScrubPass {
  checked: number;
  bytes: number;
  damaged: DamagedBlob[];
  sweptTemp: number;
}

/** Credit is capped at this many seconds of rate: a long pause does not turn into a burst of reads. */
const MAX_CREDIT_SEC = 60;

export class BlobScrubber {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private lastTick: number | undefined;
  /** Bytes that may be read now; a blob larger than the credit is read whole and leaves it negative. */
  private credit = 0;
  /** The last blob checked: the next tick goes on after it, wrapping around. */
  private cursor = '';
  /** Damaged blobs already reported, so each gets one event, not one per pass. */
  private readonly reported = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly blobs: FsBlobStore,
    private readonly clock: Clock,
    private readonly log: ScrubberLog,
    private readonly options: ScrubberOptions,
  ) {}

  /** One step: sweeps orphaned temp files, then re-hashes as many blobs as the rate allows since the last. */
  tick(): Promise<ScrubPass> {
    const run = this.running.then(() => this.step());
    this.running = run.catch((error: unknown) => this.log.error({ err: error }, 'blob scrub failed'));
    return run;
  }

  private async step(): Promise<ScrubPass> {
    const now = this.clock.now();
    const pass: ScrubPass = {
      checked: 0,
      bytes: 0,
      damaged: [],
      sweptTemp: await this.blobs.sweepTemp(this.options.tempMaxAgeMs ?? TEMP_MAX_AGE_MS),
    };
    if (pass.sweptTemp > 0) this.log.info({ files: pass.sweptTemp }, 'removed orphaned upload temp files');
    const rate = this.options.bytesPerSec;
    const elapsedSec = this.lastTick === undefined ? 0 : Math.max(0, now - this.lastTick) / 1000;
    this.lastTick = now;
    this.credit = Math.min(this.credit + rate * elapsedSec, rate * MAX_CREDIT_SEC);
    if (rate <= 0 || this.credit <= 0) return pass;

    const releases = await this.store.releases.list();
    const blobs = blobsOf(releases, await this.store.variants.of(releases.map((r) => r.id)));
    if (blobs.length === 0) return pass;
    const start = Math.max(
      0,
      blobs.findIndex((b) => b.sha256 > this.cursor),
    );
    // Each blob at most once per tick, however much credit there is.
    for (let i = 0; i < blobs.length && this.credit > 0; i++) {
      const blob = blobs[(start + i) % blobs.length]!;
      const check = await this.blobs.check(blob.sha256);
      this.cursor = blob.sha256;
      this.credit -= Math.max(1, check.size);
      pass.checked++;
      pass.bytes += check.size;
      const damage = damageOf(blob, check);
      if (!damage) {
        this.reported.delete(blob.sha256);
        continue;
      }
      pass.damaged.push(damage);
      if (this.reported.has(blob.sha256)) continue;
      await this.store.appendEvents([damageEvent('artifact.corrupted', damage, this.clock.now(), 'scrub')]);
      this.reported.add(blob.sha256);
    }
    return pass;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.tick().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
