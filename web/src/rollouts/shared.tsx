/** Pieces the rollout pages share: state colours and the bar of update states. */
import { formatNumber } from '../format';
import { type Counts, UPDATE_STATES } from '../types';

export const STATE_COLORS: Record<string, string> = {
  pending: '#cbd5e1',
  scheduled: '#94a3b8',
  notified: '#93c5fd',
  downloading: '#60a5fa',
  installing: '#3b82f6',
  verifying: '#6366f1',
  succeeded: '#16a34a',
  failed: '#dc2626',
  rolled_back: '#f97316',
  cancelled: '#6b7280',
  skipped: '#e5e7eb',
};

/** One horizontal bar split by update state, with the numbers spelled out for screen readers and hover. */
export function StateBar({ counts, total, label }: { counts: Counts; total: number; label: string }) {
  const sum = UPDATE_STATES.reduce((n, s) => n + (counts[s] ?? 0), 0);
  const whole = Math.max(total, sum, 1);
  const parts = UPDATE_STATES.filter((s) => (counts[s] ?? 0) > 0);
  const text = parts.length
    ? parts.map((s) => `${s.replace('_', ' ')} ${formatNumber(counts[s])}`).join(', ')
    : 'nothing yet';
  return (
    <div class="statebar-wrap">
      <div
        class="statebar"
        role="img"
        aria-label={`${label}: ${text} of ${formatNumber(total)}`}
        title={text}
      >
        {parts.map((s) => (
          <span
            key={s}
            style={{ width: `${(100 * (counts[s] ?? 0)) / whole}%`, background: STATE_COLORS[s] }}
          />
        ))}
      </div>
      <p class="small muted statebar-legend">
        {parts.map((s) => (
          <span key={s}>
            <span class="dot" style={{ background: STATE_COLORS[s] }} aria-hidden="true" />
            {s.replace('_', ' ')} {formatNumber(counts[s])}
          </span>
        ))}
        {parts.length === 0 && 'No updates yet'}
      </p>
    </div>
  );
}

/** Finished share: succeeded + failed + rolled back + cancelled + skipped of the targets. */
export function finished(counts: Counts): number {
  return ['succeeded', 'failed', 'rolled_back', 'cancelled', 'skipped'].reduce(
    (n, s) => n + (counts[s] ?? 0),
    0,
  );
}
