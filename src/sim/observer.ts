/**
 * What the simulator measures from the devices' side, per rollout: grants outside the window, concurrent
 * updates, updates offered twice, each device's phase, outcome and finish time. The server's own view
 * (timeline counts, gates, ETA) is read from it separately; the checks compare the two.
 */
import type { StateCounts } from '../core/rollout/counts.js';
import type { GateRecord } from '../store/store.js';

export const OUTCOME = { none: 0, succeeded: 1, failed: 2, rolledBack: 3 } as const;

export interface EtaSample {
  phase: number;
  at: number;
  predictedFinish: number | null;
  unknownDevices: number;
}

export class RolloutObservation {
  readonly phase: Int8Array;
  readonly outcome: Uint8Array;
  readonly finishedAt: Float64Array;
  /** Probability the scenario gave each target's update to fail. */
  readonly failureP: Float32Array;
  /** Whether each target's update fails: 0 not decided yet, 1 it succeeds, 2 it fails (every attempt). */
  private readonly fate: Uint8Array;
  /** Failures owed, per phase and failure rate: see `fails`. */
  private readonly owed = new Map<string, number>();
  active = 0;
  peakActive = 0;
  /** With max_concurrent_per: devices updating now per tag value, and the highest count any value reached. */
  readonly activePer = new Map<string, number>();
  peakPer = 0;
  peakPerValue: string | null = null;
  grants = 0;
  outsideWindow = 0;
  outsideWindowExamples: string[] = [];
  doubleOffers = 0;
  doubleOfferExamples: string[] = [];
  readonly timeline: Array<{ at: number; counts: StateCounts }> = [];
  readonly eta: EtaSample[] = [];
  gates: GateRecord[] = [];
  /** Device-side active count, queued devices waiting for a slot. */
  readonly queue: number[] = [];
  queueHead = 0;

  constructor(
    readonly name: string,
    readonly id: string,
    size: number,
  ) {
    this.phase = new Int8Array(size).fill(-1);
    this.outcome = new Uint8Array(size);
    this.finishedAt = new Float64Array(size);
    this.failureP = new Float32Array(size);
    this.fate = new Uint8Array(size);
  }

  /**
   * Whether device i's update fails, decided when it first starts and kept for its retries (a bad pairing
   * of device and release fails every time). Failures are spread evenly over the order in which a phase's
   * devices start, not drawn at random: among the first n devices of a phase with failure rate p, round(n·p)
   * fail. So a phase's success rate is the injected one from its first devices on, and a gate trips exactly
   * when the injected rate crosses its threshold, however few devices it has judged.
   */
  fails(i: number): boolean {
    if (this.fate[i] === 0) {
      const p = this.failureP[i]!;
      const key = `${this.phase[i]}:${p}`;
      const before = this.owed.get(key) ?? 0.5;
      this.owed.set(key, before + p);
      this.fate[i] = Math.floor(before + p) > Math.floor(before) ? 2 : 1;
    }
    return this.fate[i] === 2;
  }

  started(): void {
    this.grants++;
  }

  /** A device starts (+1) or stops (−1) updating; `tagValue` when the rollout limits each tag value. */
  updating(delta: 1 | -1, tagValue: string | null): void {
    this.active += delta;
    if (this.active > this.peakActive) this.peakActive = this.active;
    if (tagValue === null) return;
    const n = (this.activePer.get(tagValue) ?? 0) + delta;
    this.activePer.set(tagValue, n);
    if (n > this.peakPer) {
      this.peakPer = n;
      this.peakPerValue = tagValue;
    }
  }

  /** Device-side success rate of phase `p`'s devices finished by `at` (percent), with their count. */
  phaseRate(
    p: number,
    at: number,
  ): { rate: number | null; finished: number; expected: number | null; devices: number } {
    let ok = 0;
    let done = 0;
    let expectedOk = 0;
    let devices = 0;
    for (let i = 0; i < this.phase.length; i++) {
      if (this.phase[i] !== p) continue;
      devices++;
      if (this.outcome[i] === OUTCOME.none || this.finishedAt[i]! > at) continue;
      done++;
      if (this.outcome[i] === OUTCOME.succeeded) ok++;
      expectedOk += 1 - this.failureP[i]!;
    }
    return {
      rate: done === 0 ? null : (100 * ok) / done,
      finished: done,
      expected: done === 0 ? null : (100 * expectedOk) / done,
      devices,
    };
  }
}
