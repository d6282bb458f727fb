/** The answer of a rehearsal (POST /api/v1/rollouts/rehearse): what the rollout would do on the fleet's history. */

export interface RehearsedPhaseJson {
  name: string;
  devices: number;
  /** Over the seeds: the median instants (null: not reached in most seeds). */
  start_at: string | null;
  gate_at: string | null;
  finish_at: string | null;
  /** Seeds in which its gate passed, halted the rollout, or was never judged. */
  gate: { passed: number; halted: number; not_reached: number } | null;
}

export interface RehearsalJson {
  rehearsal: true;
  targets: number;
  /** Targets followed (all, or an even sample with the limits scaled alike). */
  rehearsed: number;
  seeds: number;
  failure_rate: number;
  update_time: { source: 'history' | 'default'; samples: number };
  /** Nearest-rank over the seeds; null when the rollout did not finish within the horizon in enough seeds. */
  finish: { p50_at: string | null; p90_at: string | null; finished_runs: number; halted_runs: number };
  phases: RehearsedPhaseJson[];
  /** The median count of targets that never got their turn. */
  unfinished: number;
  deadline: { at: string; max_concurrent: number | null; p90_at: string | null } | null;
  runs: Array<{ seed: number; finish_at: string | null; halted_at: string | null; unfinished: number }>;
  limits: { devices: number; seeds: number; horizon_hours: number };
}
