/**
 * What the simulator measures from the devices' side, per rollout: grants outside the window, concurrent
 * updates, updates offered twice, each device's phase, outcome and finish time. The server's own view
 * (timeline counts, gates, ETA) is read from it separately; the checks compare the two.
 */
import type { StateCounts } from '../core/rollout/counts.js';
import type { PendingUpdateJson } from '../protocol/device-api.js';
import type { PlanJson } from '../protocol/rollouts.js';
import type { GateRecord } from '../store/store.js';

export const OUTCOME = { none: 0, succeeded: 1, failed: 2, rolledBack: 3 } as const;

export interface EtaSample {
  phase: number;
  at: number;
  /** Recorded as a phase started (or the rollout was created), or on the hourly round. */
  when: 'phase_start' | 'hourly';
  /** The P50 finish. */
  predictedFinish: number | null;
  p90: number | null;
  /** Where its update time came from. */
  source: 'observed' | 'history' | 'default' | null;
  unknownDevices: number;
  /** Sampled waiting devices not online inside their window on any of the last days. */
  unreachable: number;
}

export interface PhaseMeasure {
  succeeded: number;
  /** Failed for good: no attempt left. */
  failed: number;
  /** Failed with attempts left, or timed out by the server: the engine may count them failed or waiting. */
  unsettled: number;
  /** succeeded / (succeeded + failed), percent. */
  rate: number | null;
  /** What the injected failure rates predict for the same devices. */
  expected: number | null;
  /** The phase's devices, finished or not. */
  devices: number;
}

export class RolloutObservation {
  readonly phase: Int8Array;
  readonly outcome: Uint8Array;
  readonly finishedAt: Float64Array;
  /** The simulator's turn (Simulator.moment) each device finished in. */
  readonly finishedMoment: Uint32Array;
  /**
   * Devices the server gave up on (timed out, final report refused), with the last turn the device learnt it
   * in: how many attempts the server counted for them is its own reckoning, so their failures stay unsettled,
   * and a success counts only when it came after (its report accepted).
   */
  private readonly gaveUp = new Map<number, number>();
  /** Each device's failed attempts, and the turn it first failed in (0: never). */
  readonly failures: Uint8Array;
  readonly firstFailedMoment: Uint32Array;
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
  /** Downloads the devices started and the bytes they fetch: the full artifact, or a delta when offered one. */
  readonly downloads = { full: 0, delta: 0, bytesFull: 0, bytesDelta: 0 };
  readonly timeline: Array<{ at: number; counts: StateCounts }> = [];
  readonly eta: EtaSample[] = [];
  /** The dry run's answer just before the rollout was created. */
  plan: PlanJson | null = null;
  /** The server's gate decisions, each with the simulator's turn it was made in. */
  gates: Array<GateRecord & { moment: number }> = [];
  /**
   * Devices whose update the server failed on its own (timed out in progress) and when: the engine counts them
   * failed at once, the device learns it only when it next connects.
   */
  readonly timedOut = new Map<number, number>();
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
    this.finishedMoment = new Uint32Array(size);
    this.failures = new Uint8Array(size);
    this.firstFailedMoment = new Uint32Array(size);
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

  /** A device starts downloading an update (each attempt again: a retry fetches the bytes anew). */
  downloaded(u: PendingUpdateJson): void {
    const d = this.downloads;
    if (u.delta) {
      d.delta++;
      d.bytesDelta += u.delta.size;
    } else {
      d.full++;
      d.bytesFull += (JSON.parse(u.manifest) as { size: number }).size;
    }
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

  /**
   * Phase `p`'s devices as the devices saw them before the simulator's turn `moment`, when a gate decided at
   * `at`:
   * - settled: succeeded, or failed with no attempt left under the rollout's `attempts`;
   * - unsettled: failed with attempts left, or timed out by the server (`timedOut`, or its final report
   *   refused): the engine counts such a device failed until its next pass retries it, then waiting, so
   *   either count is right at a gate;
   * and what the injected failure rates predict for the settled devices.
   */
  phaseRate(p: number, moment: number, at: number, attempts: number): PhaseMeasure {
    let succeeded = 0;
    let failed = 0;
    let unsettled = 0;
    let expectedOk = 0;
    let devices = 0;
    for (let i = 0; i < this.phase.length; i++) {
      if (this.phase[i] !== p) continue;
      devices++;
      const finished = this.outcome[i] !== OUTCOME.none && this.finishedMoment[i]! < moment;
      const gaveUp = this.gaveUp.get(i);
      // A success the server refused: it had given up on the update at or after the device finished it.
      const refused = gaveUp !== undefined && gaveUp >= this.finishedMoment[i]!;
      if (finished && this.outcome[i] === OUTCOME.succeeded && !refused) succeeded++;
      else if (
        finished &&
        this.outcome[i] === OUTCOME.failed &&
        this.failures[i]! >= attempts &&
        gaveUp === undefined
      )
        failed++;
      else {
        const failedBefore = this.firstFailedMoment[i] !== 0 && this.firstFailedMoment[i]! < moment;
        if (failedBefore || (this.timedOut.get(i) ?? Number.POSITIVE_INFINITY) <= at) unsettled++;
        continue;
      }
      expectedOk += 1 - this.failureP[i]!;
    }
    const settled = succeeded + failed;
    return {
      succeeded,
      failed,
      unsettled,
      rate: settled === 0 ? null : (100 * succeeded) / settled,
      expected: settled === 0 ? null : (100 * expectedOk) / settled,
      devices,
    };
  }

  /** The server refused device i's final report: it had given up on the update. */
  refused(i: number, moment: number): void {
    this.gaveUp.set(i, moment);
  }

  /** Device i's update failed on its side, or the server gave up on it (the device just learnt it). */
  failedOnce(i: number, moment: number, byServer: boolean): void {
    if (byServer) this.gaveUp.set(i, moment);
    if (this.failures[i]! < 255) this.failures[i]!++;
    if (this.firstFailedMoment[i] === 0) this.firstFailedMoment[i] = moment;
  }
}
