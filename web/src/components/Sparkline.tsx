/** A small SVG line chart of one telemetry series: the average, with the min–max band of hourly points. */
import { formatTime } from '../format';
import type { TelemetryPointJson } from '../types';

const W = 320;
const H = 80;
const PAD = 4;

export function Sparkline({ name, points }: { name: string; points: TelemetryPointJson[] }) {
  if (points.length === 0) return null;
  const times = points.map((p) => Date.parse(p.at));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const lo = Math.min(...points.map((p) => p.min));
  const hi = Math.max(...points.map((p) => p.max));
  const x = (t: number) => PAD + (t1 === t0 ? (W - 2 * PAD) / 2 : ((t - t0) / (t1 - t0)) * (W - 2 * PAD));
  const y = (v: number) => H - PAD - (hi === lo ? (H - 2 * PAD) / 2 : ((v - lo) / (hi - lo)) * (H - 2 * PAD));
  const line = points.map((p, i) => `${x(times[i]!).toFixed(1)},${y(p.avg).toFixed(1)}`).join(' ');
  const band =
    points.some((p) => p.min !== p.max) &&
    [
      ...points.map((p, i) => `${x(times[i]!).toFixed(1)},${y(p.max).toFixed(1)}`),
      ...points.map((p, i) => `${x(times[i]!).toFixed(1)},${y(p.min).toFixed(1)}`).reverse(),
    ].join(' ');
  const last = points[points.length - 1]!;
  return (
    <figure class="sparkline" data-testid={`telemetry-${name}`}>
      <figcaption>
        <span class="mono">{name}</span> <strong>{round(last.avg)}</strong>{' '}
        <span class="muted small">
          ({round(lo)}–{round(hi)} since {formatTime(points[0]!.at, true)})
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" height={H} role="img" aria-label={`${name} over time`}>
        {band && <polygon points={band} fill="currentColor" opacity="0.15" />}
        <polyline points={line} fill="none" stroke="currentColor" stroke-width="1.5" />
        {/* The latest point, visible even when it is the only one. */}
        <circle cx={x(times[times.length - 1]!)} cy={y(last.avg)} r="2.5" fill="currentColor" />
      </svg>
    </figure>
  );
}

const round = (n: number) => String(Math.round(n * 100) / 100);
