/**
 * Status reports for the agent: each is made durable in the outbox before anything else happens, then
 * delivered in order, backing off while the server is unreachable. A report the server could only refuse
 * (a state it already has, or one it cannot move to) is not made at all.
 */
import type { Clock } from '../core/clock.js';
import {
  type DeviceReportedState,
  isAllowed,
  UPDATE_STATES,
  type UpdateState,
} from '../core/update-state.js';
import type { DeviceClient, PendingUpdate } from './client.js';
import type { Logger } from './log.js';
import { deliver, isFinalMark, type Outbox } from './outbox.js';
import { Backoff, type Random } from './schedule.js';

/** The server cancelled the update being worked on. */
export class Cancelled extends Error {
  constructor(readonly updateId: string) {
    super(`update ${updateId} cancelled`);
    this.name = 'Cancelled';
  }
}

const KNOWN_STATES = new Set<string>(UPDATE_STATES);

export class Reporter {
  /** The server's view of each update as of the last heartbeat. */
  private readonly seen = new Map<string, PendingUpdate>();
  private readonly cancelled = new Set<string>();
  private readonly retry: Backoff;

  constructor(
    private readonly outbox: Outbox,
    private readonly client: Pick<DeviceClient, 'report'>,
    private readonly clock: Clock,
    random: Random,
    private readonly log: Logger,
  ) {
    this.retry = new Backoff(random);
  }

  /** What the last heartbeat said is pending. */
  observe(pending: PendingUpdate[]): void {
    this.seen.clear();
    for (const u of pending) {
      this.seen.set(u.id, u);
      if (u.state === 'cancelled') this.cancelled.add(u.id);
    }
  }

  isCancelled(updateId: string): boolean {
    return this.cancelled.has(updateId);
  }

  /** Our last word on the update: the state reported last, or `cancelled`. */
  lastState(updateId: string): string | undefined {
    return this.outbox.mark(updateId)?.state;
  }

  isFinished(updateId: string): boolean {
    return isFinalMark(this.outbox.mark(updateId));
  }

  /** Not taken: an update we finished whose final report the server has not had yet (it would still list it). */
  wanted(u: PendingUpdate): boolean {
    if (this.cancelled.has(u.id)) return false;
    const mark = this.outbox.mark(u.id);
    return !(isFinalMark(mark) && u.last_seq < (mark?.seq ?? 0));
  }

  /** Records a report durably, then tries to deliver it; throws Cancelled once the server says so. */
  async report(
    updateId: string,
    state: DeviceReportedState,
    details: { progress?: number; error?: string } = {},
  ): Promise<void> {
    const from = this.baseline(updateId);
    if (from === undefined || isAllowed(from, state)) {
      const serverSeq = this.seen.get(updateId)?.last_seq;
      await this.outbox.append(updateId, state, {
        ...details,
        ...(serverSeq !== undefined ? { serverSeq } : {}),
      });
      await this.flush();
    }
    if (this.cancelled.has(updateId)) throw new Cancelled(updateId);
  }

  /** The server cancelled it: drop its undelivered reports and never take it up again. */
  async forget(updateId: string): Promise<void> {
    this.cancelled.add(updateId);
    await this.outbox.cancel(updateId);
  }

  /** Delivers the outbox in order, unless backing off after a failure. */
  async flush(): Promise<void> {
    if (this.outbox.pending().length === 0 || !this.retry.ready(this.clock.now())) return;
    const result = await deliver(
      this.outbox,
      (r) => this.client.report(r),
      (r, reason) => this.log.warn('status report refused by the server; dropped', { ...r, reason }),
    );
    for (const id of result.cancelled) this.cancelled.add(id);
    if (result.ok) {
      this.retry.succeeded();
    } else {
      const wait = this.retry.failed(this.clock.now());
      this.log.warn('status reports not delivered; will retry', { reason: result.reason, retry_in_ms: wait });
    }
  }

  /** Milliseconds until undelivered reports should be tried again; undefined when none wait. */
  retryInMs(): number | undefined {
    if (this.outbox.pending().length === 0) return undefined;
    return Math.max(1000, this.retry.waitMs(this.clock.now()));
  }

  /** Where the update stands: our last report if the server has not had it yet, else the server's state. */
  private baseline(updateId: string): UpdateState | undefined {
    const mark = this.outbox.mark(updateId);
    const seen = this.seen.get(updateId);
    if (mark && (!seen || seen.last_seq < mark.seq)) return mark.state;
    return seen && KNOWN_STATES.has(seen.state) ? (seen.state as UpdateState) : undefined;
  }
}
