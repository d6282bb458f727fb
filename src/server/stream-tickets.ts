/**
 * Stream tickets: for clients that cannot set an Authorization header (a browser's EventSource), a secret
 * that opens the event stream once, within a minute, and does nothing else. It goes in the stream's URL
 * instead of the API token: a URL ends up in proxy logs and browser history, so what it carries must be
 * worthless by the time anyone reads it. Tickets live in this replica's memory (only their hash), and the
 * token they were issued for is checked again when one is redeemed, so revoking the token revokes them.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { FleetError } from '../core/errors.js';
import { hashSecret } from '../registry/credentials.js';

export const TICKET_TTL_MS = 60_000;
/** Unredeemed tickets held at most: each costs a few hundred bytes, and only an operator can ask for one. */
const MAX_OUTSTANDING = 10_000;

export class StreamTickets {
  /** hash of the ticket → the hash of the API token it stands for, and when it stops opening anything. */
  private readonly tickets = new Map<string, { tokenHash: string; expiresAt: number }>();

  constructor(private readonly clock: Clock) {}

  issue(tokenHash: string): { ticket: string; expiresAt: number } {
    const now = this.clock.now();
    for (const [key, t] of this.tickets) if (t.expiresAt <= now) this.tickets.delete(key);
    if (this.tickets.size >= MAX_OUTSTANDING) {
      throw new FleetError(
        'CONFLICT',
        'too many unredeemed stream tickets; open the streams asked for first',
      );
    }
    const ticket = `fld_ticket_${randomBytes(32).toString('base64url')}`;
    const expiresAt = now + TICKET_TTL_MS;
    this.tickets.set(hashSecret(ticket), { tokenHash, expiresAt });
    return { ticket, expiresAt };
  }

  /** The hash of the API token the ticket was issued for; the ticket is spent whether or not it was valid. */
  redeem(ticket: string): string {
    const key = hashSecret(ticket);
    const found = this.tickets.get(key);
    this.tickets.delete(key);
    if (!found || found.expiresAt <= this.clock.now()) {
      throw new FleetError(
        'UNAUTHENTICATED',
        'the stream ticket is unknown, expired or already used: ask POST /api/v1/events/stream-ticket for another',
      );
    }
    return found.tokenHash;
  }
}
