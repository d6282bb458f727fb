/**
 * Keeps the TUF repository in step with the store's releases and re-signs snapshot and timestamp before they
 * expire. `tick` runs on a timer (the server's) and after each upload or deletion; what is due is decided by
 * the repository's injected clock, so tests move time instead of waiting. Each tick also writes a
 * `tuf.expiring` event for metadata close to expiring (the root above all, which only its offline holders can
 * renew), once per role and expiry time while the server runs.
 */
import type { Clock } from '../../core/clock.js';
import type { Store } from '../../store/store.js';
import { describeLeft, type ExpiringRole, expiring } from './tuf-expiry.js';
import { mirrorTufMetadata } from './tuf-mirror.js';
import type { TufRepository } from './tuf-repository.js';

/** The event a role close to expiry writes, once per expiry time (docs/signing.md). */
export const TUF_EXPIRING = 'tuf.expiring';

export interface PublisherLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Once a minute is far inside the shortest lifetime (a day for timestamp, re-signed at half). */
export const TUF_PUBLISH_INTERVAL_MS = 60_000;

export class TufPublisher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  /** The expiry time each role was last warned of. */
  private readonly warned = new Map<ExpiringRole | string, number>();

  constructor(
    readonly repository: TufRepository,
    private readonly store: Store,
    private readonly log: PublisherLog,
    private readonly clock: Clock,
    /** A folder to keep a copy of the public metadata in, for a CDN (`fleetd server --tuf-mirror`). */
    private readonly mirrorDir?: string,
  ) {}

  /** Publishes what is due; true when a new timestamp was signed. */
  tick(): Promise<boolean> {
    const run = this.running.then(async () => {
      try {
        const signed = await this.repository.publish(await this.store.releases.list());
        if (signed) this.log.info({}, 'TUF: signed new metadata');
        // Every tick, not only after signing: an installed root, or a mirror wiped by hand, is caught up too.
        if (this.mirrorDir !== undefined) {
          const copied = await mirrorTufMetadata(this.repository.publicFolders(), this.mirrorDir);
          if (copied.length > 0) this.log.info({ files: copied }, 'TUF: mirrored metadata');
        }
        return signed;
      } finally {
        // Above all when publishing failed: that is when metadata runs out.
        await this.warnOfExpiry();
      }
    });
    this.running = run.catch((error: unknown) => this.log.error({ err: error }, 'TUF: publishing failed'));
    return run;
  }

  private async warnOfExpiry(): Promise<void> {
    const now = this.clock.now();
    const windows: Record<string, number> = {};
    const expiries: Record<string, number> = {};
    for (const [role, w] of Object.entries(this.repository.expiryWarnings())) {
      windows[role] = w.warnMs;
      expiries[role] = w.expiresMs;
    }
    const due = expiring(
      expiries,
      windows as Record<ExpiringRole, number> & Record<string, number>,
      now,
    ).filter((e) => this.warned.get(e.role) !== e.expiresMs);
    if (due.length === 0) return;
    await this.store.appendEvents(
      due.map((e) => ({
        at: now,
        type: TUF_EXPIRING,
        deviceId: null,
        rolloutId: null,
        actor: 'tuf',
        reason:
          e.role === 'root'
            ? `the TUF root expires ${describeLeft(e.leftMs)}: its holders sign the next root offline (docs/signing.md)`
            : isTopLevel(e.role)
              ? `the TUF ${e.role} metadata expires ${describeLeft(e.leftMs)} and has not been re-signed: check the server's ${e.role} key`
              : `the TUF delegated role ${e.role} expires ${describeLeft(e.leftMs)}: its team signs the next version (\`fleetd keys sign-delegated ${e.role}\`)`,
        data: {
          role: e.role,
          expires: new Date(e.expiresMs).toISOString(),
          ...(isTopLevel(e.role) ? {} : { delegated: true }),
        },
      })),
    );
    for (const e of due) this.warned.set(e.role, e.expiresMs);
    this.log.error({ roles: due.map((e) => e.role) }, 'TUF: metadata close to expiry');
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

const isTopLevel = (role: string) => ['root', 'targets', 'snapshot', 'timestamp'].includes(role);
