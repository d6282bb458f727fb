/** Targets already waiting in other open rollouts, per rollout, and what the spec's `overlap` does with them. */
import { formatNumber } from '../format';
import type { Plan } from '../types';

const OUTCOMES: Record<Plan['conflicts'][number]['outcome'], string> = {
  superseded: 'taken over by this rollout',
  kept: 'stay there (lower or equal priority)',
  refused: 'Create will be refused (overlap: refuse)',
};

export function ConflictNotice({ plan }: { plan: Plan }) {
  if (plan.conflicts.length === 0) return null;
  return (
    <div class="notice" role="status" data-testid="plan-conflicts">
      <p>
        <strong>{formatNumber(plan.conflicts.reduce((n, c) => n + c.devices, 0))}</strong> targets wait in
        other open rollouts (overlap: {plan.spec.overlap}, priority {plan.spec.priority}):
      </p>
      <ul class="small">
        {plan.conflicts.map((c) => (
          <li key={c.rollout_id}>
            <span class="mono">{c.rollout_id}</span> “{c.name}” (priority {c.priority}):{' '}
            {formatNumber(c.devices)} — {OUTCOMES[c.outcome]}
          </li>
        ))}
      </ul>
    </div>
  );
}
