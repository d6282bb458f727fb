/**
 * The operator API's rollouts and plans: their JSON schemas, from which the API's serialisation, the
 * OpenAPI document, the CLI's views and the dashboard's types come. The mapping from the engine's progress
 * is the server's (`server/rollout-json.ts`), typed by these.
 */
import { type Static, Type } from 'typebox';
import type { RolloutSpecInput } from '../core/rollout/spec.js';
import { Nullable } from './common.js';

/** The normalized spec, as a document (JSON schema: any value, so serialisation writes it unchanged). */
const SpecDocument = Type.Unsafe<RolloutSpecInput>(
  Type.Unknown({ description: 'The normalized spec: every default spelled out' }),
);

const Counts = Type.Record(Type.String(), Type.Integer(), { description: 'Device updates by state' });
export const GateJson = Type.Object({
  decision: Type.String({ description: 'wait, pass, halt or await_approval' }),
  reason: Nullable(Type.String()),
  success_rate: Nullable(Type.Number()),
  threshold: Nullable(Type.Number()),
  finished: Type.Integer(),
  at: Type.String(),
});
export const ReachabilityJson = Type.Object(
  {
    days: Type.Integer({ description: 'Days of status history looked back over' }),
    checked: Type.Integer({ description: 'Targets judged (known for at least one window)' }),
    reachable: Type.Integer(),
    too_new: Type.Integer({ description: 'Known too briefly for a window to have gone by: not judged' }),
    unreachable: Type.Object({
      count: Type.Integer({ description: 'Not online inside their window on any of those days' }),
      devices: Type.Array(Type.String(), { description: 'The first 100' }),
    }),
    never_seen: Type.Object({
      count: Type.Integer({ description: 'Never seen at all' }),
      devices: Type.Array(Type.String(), { description: 'The first 100' }),
    }),
    suggestions: Type.Array(Type.String()),
  },
  { description: 'Targets the window has not reached lately, from the status history' },
);
export type ReachabilityJson = Static<typeof ReachabilityJson>;

export const EtaJson = Type.Object({
  finish_at: Type.String({ description: 'The P50 finish (as p50_at)' }),
  p50_at: Type.String(),
  p90_at: Type.String(),
  source: Type.Union([Type.Literal('observed'), Type.Literal('history'), Type.Literal('default')], {
    description:
      "Where the update time came from: this rollout's finished updates, earlier rollouts on the same hardware, or the default",
  }),
  update_time: Type.Object({
    typical_ms: Type.Integer({ description: 'Mean update time (granted → finished): the P50' }),
    slow_ms: Type.Integer({ description: "The mean's 90 % upper bound: the P90" }),
    samples: Type.Integer(),
  }),
  throughput_per_hour: Type.Number(),
  unknown_devices: Type.Integer({
    description:
      'Devices not expected to connect (while allowed to start) within four weeks: not in the estimate',
  }),
  phases: Type.Array(
    Type.Object({
      name: Type.String(),
      devices: Type.Integer(),
      start_at: Type.String(),
      gate_at: Type.String(),
      finish_at: Type.String(),
    }),
  ),
});

export const RolloutJson = Type.Object({
  id: Type.String(),
  name: Type.String(),
  state: Type.String(),
  strategy: Type.String(),
  release: Type.String(),
  filter: Type.String(),
  spec: SpecDocument,
  created_by: Type.String(),
  created_at: Type.String(),
  started_at: Nullable(Type.String()),
  finished_at: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  current_phase: Type.Integer(),
  phases: Type.Array(
    Type.Object({
      name: Type.String(),
      percentage: Type.Number(),
      devices: Type.Integer(),
      started_at: Nullable(Type.String()),
      counts: Counts,
      success_rate: Nullable(Type.Number()),
      threshold: Nullable(Type.Number()),
      gate: Nullable(GateJson),
    }),
  ),
  totals: Type.Object({ targets: Type.Integer(), counts: Counts, success_rate: Nullable(Type.Number()) }),
  rollback: Nullable(Counts),
  rollback_unavailable: Nullable(
    Type.Object(
      {
        count: Type.Integer(),
        devices: Type.Array(
          Type.Object({ device_id: Type.String(), version: Nullable(Type.String()), reason: Type.String() }),
        ),
      },
      {
        description: 'Rolled back: devices that cannot return to their previous version, and why (first 20)',
      },
    ),
  ),
  throughput_per_hour: Type.Number(),
  eta: Nullable(
    Type.Object({
      ...EtaJson.properties,
      waiting: Type.Integer(),
      reachability: ReachabilityJson,
    }),
  ),
  failing: Type.Array(
    Type.Object({ device_id: Type.String(), error: Nullable(Type.String()), at: Type.String() }),
  ),
});

export type RolloutJson = Static<typeof RolloutJson>;
export type GateJson = Static<typeof GateJson>;
export type EtaJson = Static<typeof EtaJson>;
export type PhaseJson = RolloutJson['phases'][number];

/** The dry run's answer: what `create` would do, and when, without doing it. */
export const PlanJson = Type.Object({
  dry_run: Type.Literal(true),
  spec: SpecDocument,
  release: Type.String({ description: 'name@version' }),
  targets: Type.Integer(),
  online: Type.Integer(),
  offline: Type.Integer(),
  by_status: Type.Record(Type.String(), Type.Integer()),
  skipped: Type.Array(Type.Object({ device_id: Type.String(), reason: Type.String() }), {
    description: 'The first 1,000 devices the filter matches that will not be updated, and why',
  }),
  skipped_total: Type.Integer(),
  phases: Type.Array(
    Type.Object({
      name: Type.String(),
      percentage: Type.Number(),
      devices: Type.Integer(),
      online: Type.Integer(),
      sample: Type.Array(Type.String(), { description: 'The first devices of the phase' }),
    }),
  ),
  windows: Type.Array(
    Type.Object({
      timezone: Type.String(),
      devices: Type.Integer(),
      opens_at: Type.String(),
      closes_at: Type.String(),
      opens_local: Type.String(),
      closes_local: Type.String(),
    }),
  ),
  eta: EtaJson,
  reachability: Type.Object({ ...ReachabilityJson.properties, targets: Type.Integer() }),
  timeline: Type.Array(Type.Object({ at: Type.String(), what: Type.String() })),
  conflicts: Type.Array(
    Type.Object({
      rollout_id: Type.String(),
      name: Type.String(),
      priority: Type.Integer(),
      devices: Type.Integer({ description: 'Targets waiting in that rollout (their update not started)' }),
      outcome: Type.Enum(['superseded', 'kept', 'refused'], {
        description: 'superseded: this rollout takes them; kept: they stay there; refused: overlap: refuse',
      }),
    }),
    { description: "Targets waiting in other open rollouts, per rollout, and what the spec's overlap does" },
  ),
});
export type PlanJson = Static<typeof PlanJson>;
