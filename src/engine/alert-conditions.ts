/**
 * What each alert rule observes in the store now: for each alert it may raise (one per rule, or one per rollout
 * for the rollout rules), whether its condition holds and the value it was judged on. Reads only count queries
 * and short lists (never every device), so a rule costs the same on a large fleet as a fleet stats call.
 */
import type { AlertRule } from '../core/alerts/alert-rule.js';
import { parseFilter } from '../core/filter/index.js';
import { tally } from '../core/rollout/counts.js';
import type { Store, TimeContext } from '../store/store.js';
import { phaseCounts } from './counts.js';

export interface Observation {
  /** `rule` for fleet-wide rules, `rule/rollout-id` for a per-rollout one. */
  key: string;
  holds: boolean;
  value: number;
  threshold: number;
  rolloutId: string | null;
}

/** The director's root in the TUF expiries (docs/signing.md, "The director"): warned of like the image root. */
export const DIRECTOR_ROOT = 'director-root';

/** How many rollouts a per-rollout rule looks at each time: the open ones are few; this bounds a runaway. */
const MAX_ROLLOUTS = 500;

const within = (filter: string | null, extra: string) =>
  parseFilter(filter ? `(${filter}) and ${extra}` : extra);

/** Whole seconds, which the filter language's `ago` takes. */
const agoSeconds = (ms: number) => `${Math.max(1, Math.ceil(ms / 1_000))}s ago`;

export async function observe(
  rule: AlertRule,
  store: Store,
  ctx: TimeContext,
  recentAuthFailures: (windowMs: number) => number,
  /** When each TUF role's metadata expires and how long before to warn (ms); empty on a server without TUF. */
  tufExpiries: () => Record<string, { expiresMs: number; warnMs: number }> = () => ({}),
  /** Failed operator sign-ins and token uses within the window, from the audit log. */
  recentOperatorAuthFailures: (windowMs: number) => number = () => 0,
): Promise<Observation[]> {
  const one = (value: number, threshold: number): Observation[] => [
    { key: rule.name, holds: value > threshold, value, threshold, rolloutId: null },
  ];
  switch (rule.kind) {
    case 'offline_share': {
      const known = await store.countDevices(within(rule.filter, 'status != decommissioned'), ctx);
      const offline = await store.countDevices(within(rule.filter, 'status = offline'), ctx);
      const pct = known === 0 ? 0 : (offline * 100) / known;
      return one(Math.round(pct * 100) / 100, rule.abovePct);
    }
    case 'device_silent': {
      const silent = await store.countDevices(
        within(rule.filter, `status != decommissioned and last_seen < ${agoSeconds(rule.silentForMs)}`),
        ctx,
      );
      return one(silent, rule.above);
    }
    case 'rollout_halted': {
      const halted = await store.rollouts.list({ states: ['halted'], limit: MAX_ROLLOUTS });
      return halted.map((r) => ({
        key: `${rule.name}/${r.id}`,
        holds: true,
        value: 1,
        threshold: 0,
        rolloutId: r.id,
      }));
    }
    case 'phase_failure_rate': {
      const running = await store.rollouts.list({ states: ['running'], limit: MAX_ROLLOUTS });
      const out: Observation[] = [];
      for (const r of running) {
        const t = tally(phaseCounts(await store.rollouts.counts(r.id), r.currentPhase, 'update'));
        if (t.finished < rule.minFinished) continue;
        const pct = Math.round(((t.failed * 100) / t.finished) * 100) / 100;
        out.push({
          key: `${rule.name}/${r.id}`,
          holds: pct > rule.abovePct,
          value: pct,
          threshold: rule.abovePct,
          rolloutId: r.id,
        });
      }
      return out;
    }
    case 'auth_failures':
      return one(recentAuthFailures(rule.windowMs), rule.above);
    case 'operator_auth_failures':
      return one(recentOperatorAuthFailures(rule.windowMs), rule.above);
    case 'tuf_expiry': {
      // In days left, so the alert reads "expires in 12.5 days, threshold 30".
      const days = (ms: number) => Math.round((ms / 86_400_000) * 100) / 100;
      // `within` is for the roots (the image repository's and the director's), which only their offline
      // holders renew; the online roles warn when re-signing has failed for a while (under a quarter of their
      // lifetime left).
      return Object.entries(tufExpiries()).map(([role, { expiresMs, warnMs }]) => {
        const within = role === 'root' || role === DIRECTOR_ROOT ? rule.withinMs : warnMs;
        return {
          key: `${rule.name}/${role}`,
          holds: expiresMs - ctx.now < within,
          value: days(expiresMs - ctx.now),
          threshold: days(within),
          rolloutId: null,
        };
      });
    }
  }
}
