/**
 * The life of one alert (a rule, and for per-rollout rules the rollout it is about), as a pure function of what
 * was last decided, whether the condition holds now, and the time:
 *
 *   (none) ─holds─▶ pending ─held `for`─▶ firing ─clear─▶ recovering ─clear `recover_for`─▶ (resolved)
 *                     │ clear: dropped, never fired        ▲ holds again: back to firing, no new event
 *
 * Only the two steps an operator must hear of are transitions: `firing` and `resolved`.
 */
export type AlertPhase = 'pending' | 'firing' | 'recovering';

export interface AlertState {
  phase: AlertPhase;
  /** When the condition started to hold (pending) or the alert fired (firing, recovering). */
  since: number;
  /** When the condition last stopped holding (recovering only). */
  clearSince: number | null;
}

export interface AlertStep {
  /** The alert's state now; null when there is no alert any more (never fired, or resolved). */
  state: AlertState | null;
  transition: 'firing' | 'resolved' | null;
}

export function stepAlert(
  previous: AlertState | null,
  holds: boolean,
  now: number,
  timing: { forMs: number; recoverForMs: number },
): AlertStep {
  if (holds) {
    if (previous === null || previous.phase === 'pending') {
      const since = previous?.since ?? now;
      if (now - since >= timing.forMs) {
        return { state: { phase: 'firing', since: now, clearSince: null }, transition: 'firing' };
      }
      return { state: { phase: 'pending', since, clearSince: null }, transition: null };
    }
    return { state: { phase: 'firing', since: previous.since, clearSince: null }, transition: null };
  }
  if (previous === null || previous.phase === 'pending') return { state: null, transition: null };
  const clearSince = previous.clearSince ?? now;
  if (now - clearSince >= timing.recoverForMs) return { state: null, transition: 'resolved' };
  return { state: { phase: 'recovering', since: previous.since, clearSince }, transition: null };
}
