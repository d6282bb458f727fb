/**
 * Device update ids that sort in the order they are made. A rollout writes up to a million updates in one
 * transaction: ids in creation order land at the right end of the primary key's B-tree, where random ids
 * cost a page each at random places. A random part drawn once per process follows the ordered part, so ids
 * made at the same instant by two processes (replicas) still differ without disturbing the order.
 */
import { randomBytes } from 'node:crypto';

/** 40 random bits as 10 hex digits. */
const ORIGIN = randomBytes(5).toString('hex');
/** Milliseconds × 1024 plus a sequence: up to 1,024 ids a millisecond before borrowing from the next one. */
let last = 0;

/**
 * `count` consecutive sequence numbers, after any given before in this process (even if the clock went back).
 * The id of sequence number n is `upd_` + n as 14 hex digits + `origin`: what `newUpdateId` makes, and what
 * SQLite's `printf('upd_%014x%s', n, origin)` makes when a statement writes many.
 */
export function reserveUpdateIds(count: number): { first: number; origin: string } {
  const first = Math.max(last + 1, Date.now() * 1024);
  last = first + count - 1;
  return { first, origin: ORIGIN };
}

export function newUpdateId(): string {
  return `upd_${reserveUpdateIds(1).first.toString(16).padStart(14, '0')}${ORIGIN}`;
}
