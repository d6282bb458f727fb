/**
 * The new-rollout form's state and the rollout spec it stands for. The form holds text as typed; the spec
 * leaves out what is empty (the server fills in its defaults) and sends numbers as numbers, or the text
 * itself when it is not one, so the server's validation — the one source of the rules — names the field.
 */

export const STRATEGIES = [
  'progressive',
  'immediate',
  'scheduled',
  'on_connect',
  'rolling',
  'blue_green',
] as const;
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

export interface PhaseRow {
  name: string;
  percentage: string;
  wait: string;
  success_rate: string;
  approval: 'auto' | 'manual';
}

export interface SpecForm {
  name: string;
  release: string;
  filter: string;
  strategy: (typeof STRATEGIES)[number];
  phases: PhaseRow[];
  window: 'none' | 'times' | 'cron';
  window_start: string;
  window_end: string;
  window_days: string[];
  window_cron: string;
  window_duration: string;
  window_timezone: string;
  scheduled_at: string;
  max_concurrent: string;
  per_tag: string;
  per_limit: string;
  batch_size: string;
  rate_per_minute: string;
  rate_growth_factor: string;
  rate_after_successes: string;
  retry_attempts: string;
  retry_backoff: string;
  timeout: string;
  abort_failure_rate: string;
  abort_min_finished: string;
  end_at: string;
  end_action: '' | 'stop' | 'cancel';
  offline: '' | 'queue' | 'skip';
  missed_window: '' | 'next_window' | 'on_connect';
  rollback_on_halt: boolean;
  action: '' | 'forced' | 'soft' | 'download_only';
  switch_at: string;
}

export const initialForm = (): SpecForm => ({
  name: '',
  release: '',
  filter: '',
  strategy: 'progressive',
  // The plan of seeds 000 and 001; a failed gate halts and rolls back (rollback_on_halt below).
  phases: [
    { name: 'canary', percentage: '10', wait: '24h', success_rate: '95', approval: 'auto' },
    { name: 'half', percentage: '50', wait: '12h', success_rate: '90', approval: 'auto' },
    { name: 'everyone', percentage: '100', wait: '', success_rate: '85', approval: 'auto' },
  ],
  window: 'none',
  window_start: '02:00',
  window_end: '04:00',
  window_days: [...WEEKDAYS],
  window_cron: '0 2 * * 1-5',
  window_duration: '2h',
  window_timezone: 'device',
  scheduled_at: '',
  max_concurrent: '',
  per_tag: '',
  per_limit: '',
  batch_size: '',
  rate_per_minute: '',
  rate_growth_factor: '',
  rate_after_successes: '',
  retry_attempts: '',
  retry_backoff: '',
  timeout: '',
  abort_failure_rate: '',
  abort_min_finished: '',
  end_at: '',
  end_action: '',
  offline: '',
  missed_window: '',
  rollback_on_halt: true,
  action: '',
  switch_at: '',
});

/** "12" → 12; "" → undefined; "twelve" → "twelve" (for the server to refuse by name). */
function num(text: string): number | string | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

const str = (text: string) => (text.trim() === '' ? undefined : text.trim());

/** A datetime-local value is the operator's wall clock: the browser turns it into an instant in their zone. */
function instant(local: string): string | undefined {
  if (!local) return undefined;
  const ms = Date.parse(local);
  return Number.isNaN(ms) ? local : new Date(ms).toISOString();
}

/** Drops undefined members; an object left empty becomes undefined. */
function compact<T extends Record<string, unknown>>(o: T): Partial<T> | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return Object.keys(out).length ? (out as Partial<T>) : undefined;
}

export function toSpec(f: SpecForm): Record<string, unknown> {
  const s = f.strategy;
  const window =
    f.window === 'times'
      ? {
          start: str(f.window_start),
          end: str(f.window_end),
          ...(f.window_days.length < 7 ? { days: WEEKDAYS.filter((d) => f.window_days.includes(d)) } : {}),
          timezone: str(f.window_timezone),
        }
      : f.window === 'cron'
        ? { cron: str(f.window_cron), duration: str(f.window_duration), timezone: str(f.window_timezone) }
        : undefined;
  const spec: Record<string, unknown> = {
    name: f.name.trim(),
    release: f.release.trim(),
    filter: f.filter.trim(),
    strategy: s,
    phases:
      s === 'progressive'
        ? f.phases.map((p) =>
            compact({
              name: str(p.name),
              percentage: num(p.percentage),
              wait: str(p.wait),
              success_rate: num(p.success_rate),
              approval: p.approval,
            }),
          )
        : undefined,
    window: window && compact(window),
    scheduled_at: instant(f.scheduled_at),
    max_concurrent: num(f.max_concurrent),
    max_concurrent_per: compact({ tag: str(f.per_tag), limit: num(f.per_limit) }),
    batch_size: s === 'rolling' ? num(f.batch_size) : undefined,
    rate: compact({
      per_minute: num(f.rate_per_minute),
      growth_factor: num(f.rate_growth_factor),
      after_successes: num(f.rate_after_successes),
    }),
    retry: compact({ attempts: num(f.retry_attempts), backoff: str(f.retry_backoff) }),
    timeout: str(f.timeout),
    abort: compact({ failure_rate: num(f.abort_failure_rate), min_finished: num(f.abort_min_finished) }),
    end_at: instant(f.end_at),
    end_action: f.end_at ? f.end_action || undefined : undefined,
    offline: f.offline || undefined,
    missed_window: f.missed_window || undefined,
    // Always said: the server's default depends on the strategy, the box shows one answer.
    rollback_on_halt: f.rollback_on_halt,
    action: f.action || undefined,
    switch_at: s === 'blue_green' ? num(f.switch_at) : undefined,
  };
  return compact(spec) ?? {};
}

/**
 * The field an API error is about: `details.field` when given, else the message's leading path
 * ("phases[1].percentage: must be greater…").
 */
export function errorField(message: string, details?: Record<string, unknown>): string | undefined {
  if (typeof details?.field === 'string') return details.field;
  const match = /^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)*):\s/.exec(message);
  return match?.[1];
}
