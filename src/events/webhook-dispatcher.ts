/**
 * Delivers the event log to webhooks, at least once. Each webhook has a cursor in the store (the last event
 * id delivered); the dispatcher leases a due webhook, reads the events after its cursor, POSTs those its
 * filter matches as one signed batch, and moves the cursor only after a 2xx answer. A failure keeps the
 * cursor where it was and schedules a retry with exponential backoff, so no event is lost or skipped; a crash
 * between the answer and the cursor update only repeats a batch. Webhooks are delivered concurrently, each
 * request has a timeout, and a failing webhook waits out its backoff, so a dead receiver delays no other.
 * With several replicas on one database the lease gives each webhook to one of them at a time. Where a
 * request may go is webhook-egress.ts's to say.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../core/clock.js';
import { eventJson } from '../protocol/operator-api.js';
import type { Store, StoredEvent, Webhook } from '../store/store.js';
import { EgressRefused, postWebhook } from './webhook-egress.js';
import {
  type BackoffPolicy,
  DEFAULT_BACKOFF,
  retryDelayMs,
  settledEvents,
  signature,
  webhookMatches,
} from './webhook-rules.js';

export interface DispatcherLog {
  warn(obj: unknown, msg: string): void;
  error(obj: unknown, msg: string): void;
}

export interface WebhookDispatcherOptions {
  /** Names this replica in the lease; unique per process by default. */
  owner?: string;
  /** Events read (and at most sent) per request. */
  batchSize?: number;
  /** A request without an answer after this long has failed. */
  timeoutMs?: number;
  /** How long a claimed webhook stays this replica's; renewed with each batch. At least 3 × timeoutMs. */
  leaseMs?: number;
  /** Batches sent to one webhook per claim, so one busy webhook does not keep its lease forever. */
  maxBatchesPerClaim?: number;
  /** Webhooks delivered at the same time by this replica. */
  maxConcurrent?: number;
  /** How long a missing event id is waited for before it is taken as rolled back (see settledEvents). */
  gapGraceMs?: number;
  backoff?: BackoffPolicy;
  /** Deliver to loopback, private and link-local addresses too (`--webhook-allow-private`); default false. */
  allowPrivate?: boolean;
  /** A number in [0, 1) for the backoff's jitter. */
  random?: () => number;
  log?: DispatcherLog;
}

export interface DeliveryOutcome {
  webhookId: string;
  /** Events POSTed and acknowledged with a 2xx. */
  delivered: number;
  /** Requests that got a 2xx. */
  requests: number;
  /** The cursor after this run. */
  cursor: number;
  /** Set when the run ended with a failed attempt (retried after the backoff). */
  error?: string;
}

type PostResult = { ok: true } | { ok: false; error: string };

const silentLog: DispatcherLog = { warn() {}, error() {} };

export class WebhookDispatcher {
  readonly owner: string;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private readonly maxBatches: number;
  private readonly maxConcurrent: number;
  private readonly gapGraceMs: number;
  private readonly backoff: BackoffPolicy;
  private readonly allowPrivate: boolean;
  private readonly random: () => number;
  private readonly log: DispatcherLog;
  /** Webhooks this replica is delivering now. */
  private readonly inFlight = new Set<string>();
  private readonly running = new Set<Promise<DeliveryOutcome>>();
  /** First missing event id of a gap → when it was first seen. */
  private readonly gaps = new Map<number, number>();
  private readonly stopping = new AbortController();
  private claiming = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    options: WebhookDispatcherOptions = {},
  ) {
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.batchSize = options.batchSize ?? 100;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.leaseMs = Math.max(options.leaseMs ?? 60_000, 3 * this.timeoutMs);
    this.maxBatches = options.maxBatchesPerClaim ?? 10;
    this.maxConcurrent = options.maxConcurrent ?? 16;
    this.gapGraceMs = options.gapGraceMs ?? 60_000;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.allowPrivate = options.allowPrivate ?? false;
    this.random = options.random ?? Math.random;
    this.log = options.log ?? silentLog;
  }

  /** One pass: claims the webhooks that are due and delivers to them; resolves when all are done. */
  async deliverDue(): Promise<DeliveryOutcome[]> {
    return Promise.all(await this.claimAndStart());
  }

  /** Runs a pass every `intervalMs`; deliveries that take longer go on while later passes claim others. */
  start(intervalMs: number): void {
    this.timer = setInterval(
      () => {
        if (this.claiming) return;
        this.claimAndStart().catch((error: unknown) =>
          this.log.error({ err: error }, 'webhook claim failed'),
        );
      },
      Math.max(intervalMs, 50),
    );
    this.timer.unref();
  }

  /** Stops passes, aborts requests in flight (their batches are sent again later) and waits for them. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort();
    await Promise.allSettled([...this.running]);
  }

  private async claimAndStart(): Promise<Array<Promise<DeliveryOutcome>>> {
    if (this.stopping.signal.aborted) return [];
    this.claiming = true;
    try {
      const now = this.clock.now();
      this.forgetOldGaps(now);
      const head = await this.store.lastEventId();
      const claimed = await this.store.webhooks.claim(this.owner, {
        now,
        leaseMs: this.leaseMs,
        limit: this.maxConcurrent - this.inFlight.size,
        headEventId: head,
      });
      return claimed
        .filter((w) => !this.inFlight.has(w.id))
        .map((w) => {
          this.inFlight.add(w.id);
          const run = this.deliver(w)
            .catch(async (error: unknown): Promise<DeliveryOutcome> => {
              this.log.error({ err: error, webhook: w.id }, 'webhook delivery failed');
              await this.store.webhooks.release(w.id, this.owner).catch(() => undefined);
              return { webhookId: w.id, delivered: 0, requests: 0, cursor: w.cursor, error: String(error) };
            })
            .finally(() => {
              this.inFlight.delete(w.id);
              this.running.delete(run);
            });
          this.running.add(run);
          return run;
        });
    } finally {
      this.claiming = false;
    }
  }

  /** Delivers batches to one leased webhook until it is caught up, fails, or has had its share. */
  private async deliver(webhook: Webhook): Promise<DeliveryOutcome> {
    const outcome: DeliveryOutcome = {
      webhookId: webhook.id,
      delivered: 0,
      requests: 0,
      cursor: webhook.cursor,
    };
    for (let batch = 0; batch < this.maxBatches; batch++) {
      const events = await this.store.listEvents({ after: outcome.cursor, limit: this.batchSize });
      const now = this.clock.now();
      const { settled, gap } = settledEvents(
        outcome.cursor,
        events,
        (g) => this.gaps.get(g.from),
        now,
        this.gapGraceMs,
      );
      if (gap && !this.gaps.has(gap.from)) this.gaps.set(gap.from, now);
      const last = settled.at(-1);
      if (!last) break;
      const matching = settled.filter((e) => webhookMatches(webhook, e));
      if (matching.length > 0) {
        const result = await this.post(webhook, matching);
        if (this.stopping.signal.aborted) break;
        if (!result.ok) {
          const failures = webhook.failures + 1;
          const nextAttemptAt = this.clock.now() + retryDelayMs(failures, this.random(), this.backoff);
          await this.store.webhooks.recordFailure(webhook.id, this.owner, {
            error: result.error,
            nextAttemptAt,
          });
          this.log.warn({ webhook: webhook.id, failures, error: result.error }, 'webhook delivery failed');
          return { ...outcome, error: result.error };
        }
        outcome.delivered += matching.length;
        outcome.requests += 1;
      }
      const at = this.clock.now();
      const kept = await this.store.webhooks.advance(webhook.id, this.owner, {
        cursor: last.id,
        now: at,
        delivered: matching.length > 0,
        leaseUntil: at + this.leaseMs,
      });
      // Deleted, or the lease ran out and another replica has it: that one carries on from the cursor.
      if (!kept) return outcome;
      outcome.cursor = last.id;
      webhook.failures = 0;
      if (gap || events.length < this.batchSize) break;
    }
    await this.store.webhooks.release(webhook.id, this.owner);
    return outcome;
  }

  private async post(webhook: Webhook, events: StoredEvent[]): Promise<PostResult> {
    const body = JSON.stringify({ events: events.map(eventJson) });
    const timeout = AbortSignal.timeout(this.timeoutMs);
    try {
      const response = await postWebhook(
        webhook.url,
        {
          'content-type': 'application/json',
          'user-agent': 'fleetd-webhooks',
          'x-fleetd-signature': signature(webhook.secret, body),
          'x-fleetd-delivery': randomUUID(),
        },
        body,
        { signal: AbortSignal.any([timeout, this.stopping.signal]), allowPrivate: this.allowPrivate },
      );
      if (response.status >= 200 && response.status < 300) return { ok: true };
      const redirect = response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : '';
      return {
        ok: false,
        error: `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${redirect}`,
      };
    } catch (error) {
      return { ok: false, error: this.describe(error, timeout) };
    }
  }

  private describe(error: unknown, timeout: AbortSignal): string {
    if (error instanceof EgressRefused) return error.message;
    if (this.stopping.signal.aborted) return 'aborted: the server is stopping';
    if (timeout.aborted) return `no answer within ${this.timeoutMs} ms`;
    const e = error as { code?: unknown; message?: string };
    return typeof e.code === 'string' ? e.code : (e.message ?? String(error));
  }

  /** A gap forgotten is only waited for again, never skipped sooner. */
  private forgetOldGaps(now: number): void {
    for (const [from, since] of this.gaps) {
      if (now - since > 10 * this.gapGraceMs) this.gaps.delete(from);
    }
  }
}
