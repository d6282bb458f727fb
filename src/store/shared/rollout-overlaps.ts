/**
 * Which open rollout each device of a new rollout's plan waits in (its update there not started), with that
 * rollout's name and priority: what the planner needs to apply the spec's `overlap` (core/rollout/overlap.ts).
 * Read from the rollouts' side: the open rollouts are few, and their waiting updates are read once, instead of
 * one lookup per device of a plan that may hold a million.
 */
import type { WaitingElsewhere } from '../../core/rollout/overlap.js';
import type { PlanDevice } from '../../core/rollout/plan.js';
import { OPEN_ROLLOUT_STATES } from '../../core/rollout/rollout-state.js';
import { storedSpec } from '../stored-spec.js';
import type { Db } from './events.js';
import { WAITING } from './rollout-targets.js';

export async function markWaitingElsewhere(db: Db, devices: PlanDevice[]): Promise<void> {
  const open = await db
    .selectFrom('rollouts')
    .select(['id', 'name', 'spec'])
    .where('state', 'in', [...OPEN_ROLLOUT_STATES])
    .execute();
  if (open.length === 0 || devices.length === 0) return;
  const rollouts = new Map<string, WaitingElsewhere>(
    open.map((r) => [r.id, { rolloutId: r.id, name: r.name, priority: storedSpec(r.spec).priority }]),
  );
  const rows = await db
    .selectFrom('device_updates')
    .select(['device_id', 'rollout_id'])
    .where('rollout_id', 'in', [...rollouts.keys()])
    .where('state', 'in', [...WAITING])
    .execute();
  const waitingIn = new Map(rows.map((r) => [r.device_id, rollouts.get(r.rollout_id!)!]));
  for (const d of devices) d.waitingIn = waitingIn.get(d.id) ?? null;
}
