/**
 * Configuration rollouts' messages (docs/configuration.md, "Rolling a staged version out with a strategy"): what
 * starts one, and a rollout with its phases and what each phase's devices reported.
 */
import { type Static, Type } from 'typebox';
import {
  type ConfigRolloutPhase,
  type ConfigRolloutPlan,
  type ConfigRolloutState,
  type PhaseCounts,
  phaseText,
} from '../core/config-rollout.js';
import { iso, Nullable } from './common.js';

export const StartConfigRolloutBody = Type.Object(
  {
    version: Type.Integer({ minimum: 1, description: 'The staged version, as a check the view is current' }),
    phases: Type.Optional(
      Type.String({
        maxLength: 400,
        description:
          'Cumulative phases, e.g. "1,10%,50%,100%": a number is that many devices, a percentage a share of those the staged version applies to; the last is 100% (default 1,10%,50%,100%)',
      }),
    ),
    soak: Type.Optional(
      Type.String({
        maxLength: 32,
        description: 'How long each phase soaks before its gate judges it, e.g. 10m (default 10m)',
      }),
    ),
    max_failure_rate: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description: "Halt once more than this percent of a phase's devices failed (default 5)",
      }),
    ),
    promote: Type.Optional(
      Type.Boolean({
        description: 'After the last phase, promote the staged version (default: leave it staged)',
      }),
    ),
  },
  { additionalProperties: false },
);

const Counts = Type.Object({
  released: Type.Integer({ description: 'Devices released to in this phase' }),
  applied: Type.Integer(),
  failed: Type.Integer(),
  pending: Type.Integer({ description: 'Not reported yet' }),
});

export const ConfigRolloutJson = Type.Object({
  id: Type.String(),
  name: Type.String({ description: 'The configuration document' }),
  version: Type.Integer({ description: 'The staged version rolled out' }),
  state: Type.Union([
    Type.Literal('running'),
    Type.Literal('paused'),
    Type.Literal('halted'),
    Type.Literal('completed'),
    Type.Literal('cancelled'),
  ]),
  reason: Nullable(Type.String({ description: 'Why it halted, ended or was cancelled' })),
  phase: Type.Integer({ description: 'The current phase, from 1' }),
  phases: Type.Array(
    Type.Object({
      share: Type.String({ description: '"1" (devices) or "10%" (a share), cumulative' }),
      started_at: Nullable(Type.String({ format: 'date-time' })),
      counts: Nullable(Counts),
    }),
  ),
  soak: Type.Integer({ description: 'Soak of each phase, in ms' }),
  max_failure_rate: Type.Number(),
  promote: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  created_by: Type.String(),
  updated_at: Type.String({ format: 'date-time' }),
});
export const ConfigRolloutList = Type.Object({ rollouts: Type.Array(ConfigRolloutJson) });
export const ConfigRolloutQuery = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "Only this document's" })),
});

interface ConfigRolloutSource {
  id: string;
  name: string;
  version: number;
  plan: ConfigRolloutPlan;
  state: ConfigRolloutState;
  phase: number;
  phaseStarts: number[];
  reason: string | null;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
}

export function configRolloutJson(
  r: ConfigRolloutSource,
  counts: readonly PhaseCounts[] = [],
): Static<typeof ConfigRolloutJson> {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    state: r.state,
    reason: r.reason,
    phase: r.phase + 1,
    phases: r.plan.phases.map((p: ConfigRolloutPhase, i) => {
      const c = counts[i];
      return {
        share: phaseText(p),
        started_at: iso(r.phaseStarts[i] ?? null),
        counts: c ? { ...c, pending: c.released - c.applied - c.failed } : null,
      };
    }),
    soak: r.plan.soakMs,
    max_failure_rate: r.plan.maxFailureRate,
    promote: r.plan.promote,
    created_at: iso(r.createdAt)!,
    created_by: r.createdBy,
    updated_at: iso(r.updatedAt)!,
  };
}
