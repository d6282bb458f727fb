/**
 * What operators do with rollouts: plan one (dry run), create it, and pause, resume, cancel, approve,
 * promote or roll it back. Each command is a conditional write of the store (the rollout must still be in a
 * state the command applies to), recorded with its event and actor.
 */
import { randomBytes } from 'node:crypto';
import { FleetError } from '../core/errors.js';
import { parseFilter } from '../core/filter/index.js';
import { type PlanDevice, planRollout, type RolloutPlan } from '../core/rollout/plan.js';
import type { RolloutCommand, RolloutState } from '../core/rollout/rollout-state.js';
import type { RolloutSpec } from '../core/rollout/spec.js';
import { storedSpecText } from '../core/rollout/spec-document.js';
import type {
  GateRecord,
  NewEvent,
  PlanSelection,
  Release,
  Rollout,
  Store,
  TimeContext,
} from '../store/store.js';

export interface PlannedRollout {
  spec: RolloutSpec;
  release: Release;
  plan: RolloutPlan;
  devices: PlanDevice[];
}

async function releaseOf(store: Store, spec: RolloutSpec): Promise<Release> {
  const release = await store.releases.get(spec.releaseName, spec.releaseVersion);
  if (!release) {
    throw new FleetError(
      'VALIDATION',
      `release: ${spec.release} is not in the artifact store (fleetd artifact ls)`,
      {
        field: 'release',
      },
    );
  }
  return release;
}

const selectionOf = (spec: RolloutSpec): PlanSelection => ({
  filter: parseFilter(spec.filter),
  tagKey: spec.maxConcurrentPer?.tag ?? null,
});

/** The dry run: the plan `createRollout` would make now (the same devices read alike, the same planner). */
export async function planFor(store: Store, spec: RolloutSpec, ctx: TimeContext): Promise<PlannedRollout> {
  storedSpecText(spec);
  const release = await releaseOf(store, spec);
  const devices = await store.rollouts.planDevices(selectionOf(spec), ctx);
  if (spec.deviceWindows) {
    // The windows each device takes (its own, its groups', its tags'): the plan's windows and the ETA use them.
    const resolved = await store.deviceWindows.resolve(
      devices.map((d) => d.id),
      ctx,
    );
    for (const d of devices) d.windows = resolved.get(d.id)?.windows ?? null;
  }
  return { spec, release, plan: planRollout(spec, release, devices, ctx.now), devices };
}

/** Plans and writes the rollout in one store transaction: the devices are read once, for both. */
export async function createRollout(
  store: Store,
  spec: RolloutSpec,
  ctx: TimeContext,
  actor: string,
): Promise<{ rollout: Rollout; plan: RolloutPlan }> {
  // Everything that can refuse the spec runs before the store transaction: nothing is committed for a 400.
  storedSpecText(spec);
  const release = await releaseOf(store, spec);
  return store.rollouts.create(
    selectionOf(spec),
    (devices) => {
      const plan = planRollout(spec, release, devices, ctx.now);
      if (spec.overlap === 'refuse' && plan.conflicts.length > 0) throw overlapRefused(plan);
      const rollout = newRollout(spec, release, plan, ctx, actor);
      // Written by device id: the store's indexes then take the rows in order.
      return { rollout, plan, targets: plan.targetsByDevice };
    },
    ctx,
  );
}

/** overlap: refuse and targets waiting elsewhere: nothing is created; the answer names the rollouts and counts. */
function overlapRefused(plan: RolloutPlan): FleetError {
  const total = plan.conflicts.reduce((n, c) => n + c.devices, 0);
  const where = plan.conflicts.map((c) => `${c.rolloutId} "${c.name}": ${c.devices}`).join(', ');
  return new FleetError(
    'CONFLICT',
    `overlap: ${total} targets wait in other open rollouts (${where}); with overlap: refuse nothing is created — narrow the filter, wait for them, or choose newest_wins or priority`,
    {
      field: 'overlap',
      conflicts: plan.conflicts.map((c) => ({ rollout_id: c.rolloutId, devices: c.devices })),
    },
  );
}

function newRollout(
  spec: RolloutSpec,
  release: Release,
  plan: RolloutPlan,
  ctx: TimeContext,
  actor: string,
): Rollout {
  // Seed 000: a rollout waiting for its first maintenance window is scheduled until that window opens.
  const startsNow = Math.max(plan.startsAt, plan.firstWindowAt ?? 0) <= ctx.now;
  return {
    id: `ro_${randomBytes(9).toString('base64url')}`,
    name: spec.name,
    releaseId: release.id,
    release: `${release.name}@${release.version}`,
    spec,
    state: startsNow ? 'running' : 'scheduled',
    currentPhase: 0,
    phaseStarts: startsNow ? [ctx.now] : [],
    gates: [],
    approvedPhase: -1,
    promoted: false,
    targets: plan.counts.targets,
    reason: null,
    createdBy: actor,
    createdAt: ctx.now,
    updatedAt: ctx.now,
    startedAt: startsNow ? ctx.now : null,
    finishedAt: null,
  };
}

const OPEN: RolloutState[] = ['scheduled', 'running', 'paused', 'halted'];

export async function runCommand(
  store: Store,
  id: string,
  command: RolloutCommand,
  ctx: TimeContext,
  actor: string,
): Promise<Rollout> {
  const r = await store.rollouts.get(id);
  if (!r) throw new FleetError('NOT_FOUND', `rollout ${id} does not exist`);
  const event = (type: string, reason: string, data: Record<string, unknown> = {}): NewEvent => ({
    at: ctx.now,
    type,
    deviceId: null,
    rolloutId: id,
    actor,
    reason,
    data: { from: r.state, ...data },
  });
  const rollouts = store.rollouts;
  switch (command) {
    case 'pause':
      return rollouts.update(
        id,
        ['running', 'scheduled'],
        { state: 'paused' },
        [event('rollout.paused', 'paused by operator')],
        ctx,
      );
    case 'resume': {
      // Resuming a halted rollout overrides the gate that halted it: the operator has looked and decided.
      const override = r.state === 'halted' ? { approvedPhase: r.currentPhase } : {};
      const state: RolloutState = r.startedAt === null ? 'scheduled' : 'running';
      return rollouts.update(
        id,
        ['paused', 'halted'],
        { state, reason: null, ...override },
        [
          event(
            'rollout.resumed',
            r.state === 'halted' ? `halt overridden by operator: ${r.reason ?? ''}` : 'resumed by operator',
          ),
        ],
        ctx,
      );
    }
    case 'cancel':
      return rollouts.update(
        id,
        OPEN,
        { state: 'cancelled', reason: 'cancelled by operator', finishedAt: ctx.now },
        [event('rollout.cancelled', 'cancelled by operator')],
        ctx,
        { endWaiting: { to: 'cancelled', reason: 'rollout cancelled', alsoStarted: true, actor } },
      );
    case 'approve': {
      if (r.spec.strategy !== 'progressive') {
        throw new FleetError(
          'TRANSITION_NOT_ALLOWED',
          `only progressive rollouts have phases to approve (${id} is ${r.spec.strategy})`,
        );
      }
      const phase = r.spec.phases[r.currentPhase];
      return rollouts.update(
        id,
        ['running', 'paused'],
        { approvedPhase: r.currentPhase },
        [
          event(
            'rollout.approved',
            `${phase?.name ?? 'phase'} approved: the next phase may start once its gate passes`,
            { phase: r.currentPhase },
          ),
        ],
        ctx,
      );
    }
    case 'promote':
      if (r.spec.strategy === 'progressive') return promotePhase(store, r, ctx, event);
      if (r.spec.strategy !== 'blue_green') {
        throw new FleetError(
          'TRANSITION_NOT_ALLOWED',
          `only progressive and blue_green rollouts are promoted (${id} is ${r.spec.strategy})`,
        );
      }
      return rollouts.update(
        id,
        ['running', 'paused'],
        { promoted: true },
        [event('rollout.promoted', 'promoted: switch every staged device')],
        ctx,
      );
    case 'rollback': {
      // Again on a rolled-back rollout: the devices that could not return get their way back, if the release
      // of the version they ran before has been uploaded since.
      const again = r.state === 'rolled_back';
      return rollouts.update(
        id,
        ['running', 'paused', 'halted', 'completed', 'cancelled', 'rolled_back'],
        {
          state: 'rolled_back',
          reason: again ? 'rollback retried by operator' : 'rolled back by operator',
          finishedAt: ctx.now,
        },
        [
          event(
            'rollout.rolled_back',
            again
              ? 'rollback retried by operator: devices that could not return are offered their previous version'
              : 'rolled back by operator: every updated device returns to its previous version',
          ),
        ],
        ctx,
        {
          // Once rolled back, what still waits is the way back of devices queued earlier: left to go on.
          ...(again
            ? {}
            : { endWaiting: { to: 'cancelled', reason: 'rollout rolled back', alsoStarted: true, actor } }),
          rollbackBy: actor,
        },
      );
    }
  }
}

/**
 * Progressive promote: the next phase starts now, whatever the current one's soak, quorum or approval (the
 * operator has seen enough). The gate is recorded as passed by the operator; a halted rollout is resumed, not
 * promoted. Written only while the rollout is still in the phase the operator saw.
 */
function promotePhase(
  store: Store,
  r: Rollout,
  ctx: TimeContext,
  event: (type: string, reason: string, data?: Record<string, unknown>) => NewEvent,
): Promise<Rollout> {
  const p = r.currentPhase;
  const phase = r.spec.phases[p]!;
  const next = r.spec.phases[p + 1];
  if (!next) {
    throw new FleetError(
      'TRANSITION_NOT_ALLOWED',
      `rollout ${r.id} is in its last phase (${phase.name}): there is no phase to promote to`,
    );
  }
  if (r.startedAt === null) {
    throw new FleetError('TRANSITION_NOT_ALLOWED', `rollout ${r.id} has not started yet (${r.state})`);
  }
  const reason = `${phase.name}: promoted by an operator`;
  const gate: GateRecord = {
    phase: p,
    decision: 'pass',
    reason: 'promoted by an operator',
    successRate: null,
    threshold: phase.successRate,
    finished: 0,
    at: ctx.now,
  };
  return store.rollouts.update(
    r.id,
    ['running', 'paused'],
    {
      gates: [...r.gates.filter((g) => g.phase !== p), gate],
      currentPhase: p + 1,
      phaseStarts: [...r.phaseStarts.slice(0, p + 1), ctx.now],
    },
    [
      event('rollout.promoted', reason, { phase: p + 1 }),
      event('rollout.phase_started', `${next.name} (${next.percentage}%) started: promoted by an operator`, {
        phase: p + 1,
      }),
    ],
    ctx,
    { releasePhase: p + 1, atPhase: p },
  );
}
