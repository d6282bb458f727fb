/** The rehearsal as the API answers it: per phase the median over the seeds, and each seed's outcome. */
import type { RehearsalResult } from '../engine/rehearsal.js';
import type { RehearsalJson } from '../protocol/rehearsal.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The median of the values, or null when most of them are null (not reached). */
function median(values: ReadonlyArray<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (known.length * 2 < values.length || known.length === 0) return null;
  return known[Math.floor((known.length - 1) / 2)]!;
}

export function rehearsalJson(r: RehearsalResult): RehearsalJson {
  const first = r.runs[0]!;
  return {
    rehearsal: true,
    targets: r.targets,
    rehearsed: r.rehearsed,
    seeds: r.seeds,
    failure_rate: r.failureRate,
    update_time: { source: r.updateTimeSource, samples: r.updateTimeSamples },
    finish: {
      p50_at: iso(r.p50At),
      p90_at: iso(r.p90At),
      finished_runs: r.finishedRuns,
      halted_runs: r.haltedRuns,
    },
    phases: first.phases.map((p, k) => {
      const of = r.runs.map((run) => run.phases[k]!);
      return {
        name: p.name,
        devices: p.devices,
        start_at: iso(median(of.map((x) => x.startAt))),
        gate_at: iso(median(of.map((x) => x.gateAt))),
        finish_at: iso(median(of.map((x) => x.finishAt))),
        // The last phase has no gate after it; a phase without a success rate none at all.
        gate:
          p.gate === 'none' || k === first.phases.length - 1
            ? null
            : {
                passed: of.filter((x) => x.gate === 'passed').length,
                halted: of.filter((x) => x.gate === 'halted').length,
                not_reached: of.filter((x) => x.gate === 'not_reached').length,
              },
      };
    }),
    unfinished: median(r.runs.map((run) => run.unfinished)) ?? 0,
    deadline: r.deadline && {
      at: new Date(r.deadline.at).toISOString(),
      max_concurrent: r.deadline.maxConcurrent,
      p90_at: iso(r.deadline.p90At),
    },
    runs: r.runs.map((run) => ({
      seed: run.seed,
      finish_at: iso(run.finishAt),
      halted_at: iso(run.haltedAt),
      unfinished: run.unfinished,
    })),
    limits: {
      devices: r.limits.devices,
      seeds: r.limits.seeds,
      horizon_hours: r.limits.horizonMs / 3_600_000,
    },
  };
}
