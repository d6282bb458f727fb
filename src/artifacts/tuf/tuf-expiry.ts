/**
 * Which TUF metadata is close to expiring: pure, from the expiry times and the clock. Root is signed offline,
 * so nothing here renews it: a month's warning leaves time for its holders to meet. The online roles are
 * re-signed at half their lifetime (tuf-plan.ts); one with less than a quarter left means re-signing fails,
 * and devices will refuse every update once it expires.
 */
import { DAY_MS } from './tuf-time.js';

export type ExpiringRole = 'root' | 'targets' | 'snapshot' | 'timestamp';

export interface Expiring {
  /** A top-level role, or a delegated targets role's name. */
  role: ExpiringRole | string;
  expiresMs: number;
  leftMs: number;
}

export const ROOT_WARNING_MS = 30 * DAY_MS;

/** How long before expiry each role is warned of, for these online lifetimes. */
export function warningWindows(lifetimes: Record<Exclude<ExpiringRole, 'root'>, number>) {
  return {
    root: ROOT_WARNING_MS,
    targets: lifetimes.targets / 4,
    snapshot: lifetimes.snapshot / 4,
    timestamp: lifetimes.timestamp / 4,
  } satisfies Record<ExpiringRole, number>;
}

/** The top-level roles first, then any delegated roles (with their own windows) in the order given. */
export function expiring(
  expiries: Partial<Record<ExpiringRole, number | undefined>> & Record<string, number | undefined>,
  windows: Record<ExpiringRole, number> & Record<string, number>,
  now: number,
): Expiring[] {
  const out: Expiring[] = [];
  const top: string[] = ['root', 'targets', 'snapshot', 'timestamp'];
  const roles = [...top, ...Object.keys(expiries).filter((r) => !top.includes(r))];
  for (const role of roles) {
    const expiresMs = expiries[role];
    const window = windows[role];
    if (expiresMs === undefined || window === undefined) continue;
    const leftMs = expiresMs - now;
    if (leftMs < window) out.push({ role, expiresMs, leftMs });
  }
  return out;
}

/** "in 12 days", "in 5 hours", or "2 days ago". */
export function describeLeft(leftMs: number): string {
  const abs = Math.abs(leftMs);
  const text =
    abs >= 2 * DAY_MS ? `${Math.floor(abs / DAY_MS)} days` : `${Math.floor(abs / 3_600_000)} hours`;
  return leftMs >= 0 ? `in ${text}` : `${text} ago`;
}
