/**
 * The rules of webhook delivery, without I/O: which URLs are accepted, which events a webhook receives,
 * how long to wait after a failure, the signature, and how far the event log may be read without skipping
 * an event a transaction has not committed yet.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isAuditEvent, namesAudit } from '../core/audit/audit-export.js';
import { FleetError } from '../core/errors.js';

/** The event type addressed to one webhook (data.webhook_id) by `POST /webhooks/:id/test`. */
export const TEST_EVENT_TYPE = 'webhook.test';

/** Returns the URL normalised, or a VALIDATION error naming `field`. */
export function validateWebhookUrl(text: string, field = 'url'): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new FleetError('VALIDATION', `${field}: "${text}" is not a URL`, { field });
  }
  // Checked before any other message quotes the URL: its password must not be echoed or logged.
  if (url.username || url.password) {
    throw new FleetError(
      'VALIDATION',
      `${field}: the URL must not carry credentials (user:password@); receivers authenticate FleetD by the x-fleetd-signature header`,
      { field },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FleetError('VALIDATION', `${field}: "${text}" must be an http:// or https:// URL`, { field });
  }
  if (url.hash) {
    throw new FleetError('VALIDATION', `${field}: "${text}" must not have a #fragment`, { field });
  }
  return url.toString();
}

export interface WebhookFilter {
  id: string;
  /** Event type prefixes; empty: every event. */
  types: readonly string[];
  rolloutId: string | null;
}

export interface FilterableEvent {
  type: string;
  rolloutId: string | null;
  data: Record<string, unknown>;
}

/**
 * Whether a webhook receives an event. A test event goes to the webhook it names, and to no other; an audit
 * entry only to a webhook whose filter names `audit` (never to a catch-all).
 */
export function webhookMatches(webhook: WebhookFilter, event: FilterableEvent): boolean {
  if (event.type === TEST_EVENT_TYPE) return event.data.webhook_id === webhook.id;
  if (webhook.rolloutId !== null && event.rolloutId !== webhook.rolloutId) return false;
  if (isAuditEvent(event.type)) {
    return webhook.types.some((prefix) => namesAudit(prefix) && event.type.startsWith(prefix));
  }
  return webhook.types.length === 0 || webhook.types.some((prefix) => event.type.startsWith(prefix));
}

export interface BackoffPolicy {
  /** Wait after the first failure. */
  baseMs: number;
  /** Longest wait. */
  maxMs: number;
  /** Up to this fraction is added at random, so webhooks that failed together do not retry together. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 5_000, maxMs: 3_600_000, jitter: 0.2 };

/**
 * How long to wait before the next attempt after `failures` consecutive failures (1 = the first):
 * base × 2^(failures−1), capped at max, plus up to `jitter` of it; `random` is in [0, 1).
 */
export function retryDelayMs(
  failures: number,
  random: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 40);
  const delay = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(delay * (1 + policy.jitter * Math.min(Math.max(random, 0), 1)));
}

/** `sha256=<hex HMAC-SHA256 of the body>`: the x-fleetd-signature header. */
export function signature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Checks an x-fleetd-signature header in constant time (what a receiver does). */
export function signatureMatches(secret: string, body: string | Buffer, header: string): boolean {
  const expected = Buffer.from(signature(secret, body));
  const given = Buffer.from(header);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Ids missing between a cursor and the events read after it: `from` to `to`, both included. */
export interface Gap {
  from: number;
  to: number;
}

/**
 * Event ids are allocated when a transaction writes, but become visible when it commits, so on PostgreSQL a
 * reader can see id 12 while id 11 is still in flight. The events read after `after` are safe to deliver up
 * to the first missing id, unless that gap was first seen at least `graceMs` ago (an id a transaction
 * rolled back never appears). `firstSeen(gap)` tells when the gap starting at `gap.from` was first seen;
 * undefined: now.
 */
export function settledEvents<E extends { id: number }>(
  after: number,
  events: readonly E[],
  firstSeen: (gap: Gap) => number | undefined,
  now: number,
  graceMs: number,
): { settled: E[]; gap: Gap | undefined } {
  let expected = after + 1;
  for (let i = 0; i < events.length; i++) {
    const id = events[i]!.id;
    if (id > expected) {
      const gap = { from: expected, to: id - 1 };
      const since = firstSeen(gap) ?? now;
      if (now - since < graceMs) return { settled: events.slice(0, i), gap };
    }
    expected = id + 1;
  }
  return { settled: [...events], gap: undefined };
}
