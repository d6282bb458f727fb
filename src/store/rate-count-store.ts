/** Abuse-limit counts the replicas share (server/abuse/shared-rate-counts.ts; SQL in shared/rate-counts.ts). */

export interface RateCountAdd {
  key: string;
  windowStart: number;
  /** What this replica counted since it last added. */
  add: number;
  /** When the window's row may be forgotten. */
  expiresAt: number;
}

export interface RateCountStore {
  /** Adds each count to its key's window and answers the totals over every replica, by `key@windowStart`. */
  add(adds: RateCountAdd[]): Promise<Map<string, number>>;
  /** Forgets the windows that ended before `now`; answers how many. */
  prune(now: number): Promise<number>;
}
