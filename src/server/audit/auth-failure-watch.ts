/**
 * Failed authentication made visible, in bounded amounts (docs/audit.md): per source address and window, the
 * first few failures are each an audit entry and a warning in the log; the rest are counted, and when the window
 * closes one audit entry and one `auth.failed` event (for alert rules and webhooks) say how many there were.
 * A flood of 5,000 bad tokens from one address in a minute leaves a handful of lines, not 5,000. Windows live in
 * this replica's memory, at most `maxSources` of them: more sources than that are counted together as `*`.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../../core/clock.js';
import type { Store } from '../../store/store.js';

export interface AuthFailure {
  source: string;
  /** `operator` or `device`. */
  api: string;
  method: string;
  /** The path without its query (which may carry a ticket). */
  path: string;
  /** The error code answered (UNAUTHENTICATED, RATE_LIMITED, …). */
  reason: string;
  outcome: number;
  requestId: string;
}

export interface AuthFailureWatchOptions {
  windowMs: number;
  /** Failures per source and window that are each an audit entry and a log line. */
  detailedPerWindow: number;
  maxSources: number;
}

export const DEFAULT_AUTH_FAILURE_WATCH: AuthFailureWatchOptions = {
  windowMs: 60_000,
  detailedPerWindow: 5,
  maxSources: 10_000,
};

interface Window {
  from: number;
  count: number;
  detailed: number;
  apis: Set<string>;
}

export class AuthFailureWatch {
  private readonly windows = new Map<string, Window>();
  private closing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: FastifyBaseLogger,
    private readonly options: AuthFailureWatchOptions = DEFAULT_AUTH_FAILURE_WATCH,
  ) {}

  /** Counts a failure; the first few of a window are written at once (awaited, so the answer follows them). */
  async failed(f: AuthFailure): Promise<void> {
    const now = this.clock.now();
    await this.flush(now);
    let key = f.source;
    if (!this.windows.has(key) && this.windows.size >= this.options.maxSources) key = '*';
    let w = this.windows.get(key);
    if (w === undefined) {
      w = { from: now, count: 0, detailed: 0, apis: new Set() };
      this.windows.set(key, w);
    }
    w.count++;
    w.apis.add(f.api);
    if (w.detailed >= this.options.detailedPerWindow) return;
    w.detailed++;
    this.log.warn(
      { source: f.source, api: f.api, method: f.method, path: f.path, reason: f.reason, reqId: f.requestId },
      'authentication failed',
    );
    await this.store.audit
      .append({
        at: now,
        actor: null,
        role: null,
        source: f.source,
        action: 'auth.failed',
        target: {},
        outcome: f.outcome,
        before: null,
        after: null,
        requestId: f.requestId,
        data: { api: f.api, method: f.method, path: f.path, reason: f.reason },
      })
      .catch((error: unknown) => this.log.error({ err: error }, 'could not audit a failed authentication'));
  }

  /**
   * Closes the windows that ended by `now` (all of them with `Infinity`): one audit entry for the failures
   * only counted, and one `auth.failed` event per source and window.
   */
  flush(now: number = this.clock.now()): Promise<void> {
    const ended: Array<[string, Window]> = [];
    for (const entry of this.windows) {
      if (entry[1].from + this.options.windowMs <= now) ended.push(entry);
    }
    if (ended.length === 0) return this.closing.then(() => undefined);
    for (const [key] of ended) this.windows.delete(key);
    const run = this.closing.then(() => this.close(ended, now));
    this.closing = run.catch((error: unknown) =>
      this.log.error({ err: error }, 'could not record failed authentications'),
    );
    return this.closing.then(() => undefined);
  }

  private async close(ended: Array<[string, Window]>, now: number): Promise<void> {
    for (const [source, w] of ended) {
      const until = Math.min(now, this.clock.now(), w.from + this.options.windowMs);
      const summary = {
        count: w.count,
        suppressed: w.count - w.detailed,
        from: new Date(w.from).toISOString(),
        until: new Date(until).toISOString(),
        apis: [...w.apis].sort(),
      };
      if (summary.suppressed > 0) {
        this.log.warn(
          { source, ...summary },
          'authentication failed (repeated; counted, not logged one by one)',
        );
        await this.store.audit.append({
          at: until,
          actor: null,
          role: null,
          source,
          action: 'auth.failed',
          target: {},
          outcome: 401,
          before: null,
          after: null,
          requestId: null,
          data: summary,
        });
      }
      await this.store.appendEvents([
        {
          at: until,
          type: 'auth.failed',
          deviceId: null,
          rolloutId: null,
          actor: null,
          reason: `${w.count} failed authentication${w.count === 1 ? '' : 's'} from ${source}`,
          data: { source, ...summary },
        },
      ]);
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed authentication in bounded amounts; `flush()` closes the windows that ended. */
    authFailures: AuthFailureWatch;
  }
}
