/**
 * Keeps the TUF repository in step with the store's releases and re-signs snapshot and timestamp before they
 * expire. `tick` runs on a timer (the server's) and after each upload or deletion; what is due is decided by
 * the repository's injected clock, so tests move time instead of waiting.
 */
import type { Store } from '../../store/store.js';
import type { TufRepository } from './tuf-repository.js';

export interface PublisherLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Once a minute is far inside the shortest lifetime (a day for timestamp, re-signed at half). */
export const TUF_PUBLISH_INTERVAL_MS = 60_000;

export class TufPublisher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    readonly repository: TufRepository,
    private readonly store: Store,
    private readonly log: PublisherLog,
  ) {}

  /** Publishes what is due; true when a new timestamp was signed. */
  tick(): Promise<boolean> {
    const run = this.running.then(async () => {
      const signed = await this.repository.publish(await this.store.releases.list());
      if (signed) this.log.info({}, 'TUF: signed new metadata');
      return signed;
    });
    this.running = run.catch((error: unknown) => this.log.error({ err: error }, 'TUF: publishing failed'));
    return run;
  }

  start(intervalMs = TUF_PUBLISH_INTERVAL_MS): void {
    this.timer = setInterval(() => void this.tick().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
