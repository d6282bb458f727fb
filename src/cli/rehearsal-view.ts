/** What `deploy create --rehearse` prints: the rehearsal's finish band, its timeline per phase, gates, deadline. */
import type { RehearsalJson } from '../protocol/rehearsal.js';
import { table } from './output.js';
import { duration } from './rollout-view.js';

const after = (iso: string | null, now: number) =>
  iso === null ? '—' : `${iso.slice(0, 16).replace('T', ' ')}Z (in ${duration(Date.parse(iso) - now)})`;

export function renderRehearsal(r: RehearsalJson, now: number): string {
  const sampled =
    r.rehearsed < r.targets ? ` (an even sample of ${r.rehearsed}, max_concurrent scaled alike)` : '';
  const lines = [
    'REHEARSAL — nothing was created; the fleet was not touched.',
    `${r.targets} targets${sampled}, ${r.seeds} seeds, failure rate ${Math.round(r.failure_rate * 1000) / 10}% per attempt, update time from ${r.update_time.source} (${r.update_time.samples} samples)`,
    `finish  P50 ${after(r.finish.p50_at, now)}  P90 ${after(r.finish.p90_at, now)}  (finished in ${r.finish.finished_runs} of ${r.seeds} seeds, halted in ${r.finish.halted_runs})`,
  ];
  if (r.unfinished > 0)
    lines.push(
      `  ${r.unfinished} targets never got their turn within ${r.limits.horizon_hours / 24} days (median)`,
    );
  lines.push(
    '',
    table(
      ['PHASE', 'DEVICES', 'STARTS', 'GATE', 'FINISHES', 'GATE OUTCOME'],
      r.phases.map((p) => [
        p.name,
        p.devices,
        after(p.start_at, now),
        after(p.gate_at, now),
        after(p.finish_at, now),
        p.gate ? `passed ${p.gate.passed}, halted ${p.gate.halted}, not reached ${p.gate.not_reached}` : '—',
      ]),
    ),
  );
  if (r.deadline) {
    lines.push(
      '',
      r.deadline.max_concurrent === null
        ? `deadline ${r.deadline.at}: no max_concurrent up to 8× the spec's meets it (P90)`
        : `deadline ${r.deadline.at}: max_concurrent ${r.deadline.max_concurrent} meets it (P90 ${after(r.deadline.p90_at, now)})`,
    );
  }
  return lines.join('\n');
}
