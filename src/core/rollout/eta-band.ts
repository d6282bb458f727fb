/**
 * The ETA as a band: P50 and P90 of the finish, and where the update time behind them came from. Pure.
 *
 * The update time (how long an update holds its slot, granted → finished) is the estimate's main unknown
 * before a rollout has run for a while. It comes from this rollout's finished updates (`observed`); before
 * the first one finishes, from earlier rollouts' updates on the same hardware types (`history`); and only
 * then from a default (`default`). The P50 runs the estimate with the mean update time; the P90 with a slow
 * one: the mean's one-sided 90 % upper bound, which narrows as updates finish (a default or a few earlier
 * updates leave it wide). What the band does not hold: devices keeping their hours less well than their
 * history says, halts, an operator's approval time.
 */
import { DEFAULT_UPDATE_MS, type Eta, type EtaInput, estimateEta } from './eta.js';

export type UpdateTimeSource = 'observed' | 'history' | 'default';

export interface UpdateTime {
  source: UpdateTimeSource;
  /** Durations the estimate rests on (0 with the default). */
  samples: number;
  /** The mean update time (the P50's). */
  typicalMs: number;
  /** A slow update time (the P90's). */
  slowMs: number;
}

/** z of the one-sided 90 % bound. */
const Z90 = 1.2816;
/** With the default, the P90 assumes updates this much slower. */
const DEFAULT_SLOW_FACTOR = 3;
/** Updates of earlier rollouts count as at most this many of this one's (another release may install slower). */
const HISTORY_WEIGHT = 20;
/** The P90's update time is at least this much above the mean: of this rollout's updates, of earlier ones'. */
const MIN_SPREAD = 1.1;
const MIN_HISTORY_SPREAD = 1.5;

function spread(
  durations: readonly number[],
  weight: number,
  minSpread: number,
): { mean: number; slow: number } {
  const n = durations.length;
  const mean = durations.reduce((a, b) => a + b, 0) / n;
  // With one duration its spread is unknown: take it as large as the mean.
  const sd =
    n > 1 ? Math.sqrt(durations.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1)) : Math.max(mean, 60_000);
  return { mean, slow: Math.max(mean * minSpread, mean + (Z90 * sd) / Math.sqrt(Math.min(n, weight))) };
}

/** The update time from this rollout's finished updates, else earlier ones on the same hardware, else the default. */
export function updateTimeFrom(observed: readonly number[], history: readonly number[]): UpdateTime {
  const own = observed.filter((d) => d >= 0);
  if (own.length > 0) {
    const { mean, slow } = spread(own, Number.POSITIVE_INFINITY, MIN_SPREAD);
    return { source: 'observed', samples: own.length, typicalMs: mean, slowMs: slow };
  }
  const earlier = history.filter((d) => d >= 0);
  if (earlier.length > 0) {
    const { mean, slow } = spread(earlier, HISTORY_WEIGHT, MIN_HISTORY_SPREAD);
    return { source: 'history', samples: earlier.length, typicalMs: mean, slowMs: slow };
  }
  return {
    source: 'default',
    samples: 0,
    typicalMs: DEFAULT_UPDATE_MS,
    slowMs: DEFAULT_UPDATE_MS * DEFAULT_SLOW_FACTOR,
  };
}

export interface EtaBand extends Eta {
  /** finishAt is the P50; the P90 finish. */
  p90At: number;
  updateTime: UpdateTime;
}

/** The estimate at the typical update time (P50) and at a slow one (P90). */
export function estimateEtaBand(input: Omit<EtaInput, 'updateMs'>, updateTime: UpdateTime): EtaBand {
  const p50 = estimateEta({ ...input, updateMs: updateTime.typicalMs });
  const p90 = estimateEta({ ...input, updateMs: updateTime.slowMs });
  return { ...p50, p90At: Math.max(p50.finishAt, p90.finishAt), updateTime };
}
