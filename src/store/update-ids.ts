/**
 * Device update ids that sort in the order they are made. A rollout writes up to a million updates in one
 * transaction: ids in creation order land at the right end of the primary key's B-tree, where random ids
 * cost a page each at random places. A random part drawn once per process follows the ordered part, so ids
 * made at the same instant by two processes (replicas) still differ without disturbing the order.
 */
import { randomBytes } from 'node:crypto';

/** 40 random bits as 8 base-32 digits. */
const ORIGIN = randomBytes(5).readUIntBE(0, 5).toString(32).padStart(8, '0');
/** Milliseconds × 1024 plus a sequence: up to 1,024 ids a millisecond before borrowing from the next one. */
let last = 0;

/** `upd_` + 11 base-32 digits that never go back in this process (even if the clock does) + ORIGIN. */
export function newUpdateId(): string {
  last = Math.max(last + 1, Date.now() * 1024);
  return `upd_${last.toString(32).padStart(11, '0')}${ORIGIN}`;
}
