/** The ETA band (P50–P90, where its update time came from) and the targets a window has not reached lately. */
import type { EtaJson, ReachabilityJson } from '../../../src/protocol/rollouts.js';
import { formatNumber, formatTime } from '../format';

const SOURCES: Record<EtaJson['source'], string> = {
  observed: "this rollout's update times",
  history: 'update times of earlier rollouts on this hardware',
  default: 'an assumed update time (none finished on this hardware yet)',
};

export function EtaBand({ eta }: { eta: EtaJson }) {
  return (
    <span data-testid="eta-band">
      P50 <strong>{formatTime(eta.p50_at)}</strong>, P90 <strong>{formatTime(eta.p90_at)}</strong>{' '}
      <span class="muted small" data-testid="eta-source">
        (from {SOURCES[eta.source]})
      </span>
    </span>
  );
}

export function ReachabilityNotice({ reachability: r }: { reachability: ReachabilityJson }) {
  if (r.unreachable.count === 0 && r.never_seen.count === 0) return null;
  return (
    <div class="notice" role="status" data-testid="reachability">
      {r.unreachable.count > 0 && (
        <p>
          <strong data-testid="unreachable-count">{formatNumber(r.unreachable.count)}</strong> of{' '}
          {formatNumber(r.checked)} devices were not online inside their window on any of the last {r.days}{' '}
          days.
        </p>
      )}
      {r.never_seen.count > 0 && (
        <p>
          <strong data-testid="never-seen-count">{formatNumber(r.never_seen.count)}</strong> never seen.
        </p>
      )}
      <ul class="small">
        {r.suggestions.map((s) => (
          <li key={s}>{s}</li>
        ))}
      </ul>
      <details>
        <summary>Devices</summary>
        <p class="small mono">
          {[...r.unreachable.devices, ...r.never_seen.devices].join(' ')}
          {r.unreachable.count + r.never_seen.count >
            r.unreachable.devices.length + r.never_seen.devices.length && ' …'}
        </p>
      </details>
    </div>
  );
}
