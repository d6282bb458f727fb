/**
 * When each simulated device is online, as its profile says (profiles.ts), looked up millions of times in a
 * run. Simulated time only moves forward, so each device keeps the one session that matters — the one it is
 * in, or the next one — in two typed arrays, and the profile is asked again only once that session is over:
 * 16 bytes a device, no objects.
 */
import type { FleetModel } from './fleet-model.js';

const RECHECK_MS = 7 * 86_400_000;

export class Presence {
  /** The session the device is in or will be in next: [start, end); known while the time asked is before end. */
  private readonly start: Float64Array;
  private readonly end: Float64Array;
  /** A network drop fault: offline until then, whatever its profile says. */
  private readonly droppedUntil = new Map<number, number>();
  /** Devices a release broke (scenario `dark_after_update`): offline for good from then on. */
  private readonly darkFrom = new Map<number, number>();

  constructor(private readonly model: FleetModel) {
    this.start = new Float64Array(model.size);
    this.end = new Float64Array(model.size);
  }

  /** The session containing `at` or the next one after it (starting at Infinity when none within weeks). */
  private session(i: number, at: number): void {
    if (at < this.end[i]!) return;
    const s = this.model.connectivity(i).sessionFrom(at);
    // None within the profile's horizon: look again a week on.
    this.start[i] = s ? s[0] : Number.POSITIVE_INFINITY;
    this.end[i] = s ? s[1] : at + RECHECK_MS;
  }

  isOnline(i: number, at: number): boolean {
    if (at >= (this.darkFrom.get(i) ?? Number.POSITIVE_INFINITY)) return false;
    const dropped = this.droppedUntil.get(i);
    if (dropped !== undefined) {
      if (at < dropped) return false;
      this.droppedUntil.delete(i);
    }
    this.session(i, at);
    return this.start[i]! <= at;
  }

  /** When the device is next online at or after `at` (`at` itself when it is online then). */
  nextOnline(i: number, at: number): number {
    const dropped = this.droppedUntil.get(i);
    const from = dropped !== undefined && at < dropped ? dropped : at;
    this.session(i, from);
    const next = Math.max(from, this.start[i]!);
    return next >= (this.darkFrom.get(i) ?? Number.POSITIVE_INFINITY) ? Number.POSITIVE_INFINITY : next;
  }

  /** When the device's current session ends (`at` when it is offline). */
  sessionEnd(i: number, at: number): number {
    return this.isOnline(i, at)
      ? Math.min(this.end[i]!, this.darkFrom.get(i) ?? Number.POSITIVE_INFINITY)
      : at;
  }

  /** The device goes dark for good at `at` (its first dark instant stays). */
  goDark(i: number, at: number): void {
    if (!this.darkFrom.has(i)) this.darkFrom.set(i, at);
  }

  /** The device loses the network until `until`. */
  drop(i: number, until: number): void {
    this.droppedUntil.set(i, until);
  }
}
