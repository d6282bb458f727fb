/**
 * The simulated fleet on the device side: who each device is (group, zone, firmware, tags), in typed arrays
 * indexed by device number — a few bytes per device, so a million fit; ids and tags are derived on demand.
 */
import type { DeviceRecord } from '../core/device.js';
import { Connectivity, heartbeatMs } from './profiles.js';
import { pick, textSalt, uniform } from './random.js';
import type { FleetGroup, Scenario } from './scenario.js';

export class FleetModel {
  readonly size: number;
  readonly group: Uint16Array;
  readonly zone: Uint16Array;
  /** Index into `versions`: the firmware the device runs now. */
  readonly firmware: Uint16Array;
  readonly zones: string[] = [];
  readonly versions: string[] = [];
  private readonly starts: number[] = [];

  constructor(readonly scenario: Scenario) {
    this.size = scenario.fleet.reduce((a, g) => a + g.count, 0);
    this.group = new Uint16Array(this.size);
    this.zone = new Uint16Array(this.size);
    this.firmware = new Uint16Array(this.size);
    let i = 0;
    scenario.fleet.forEach((g, gi) => {
      this.starts.push(i);
      const salt = textSalt(g.idPrefix);
      for (let k = 0; k < g.count; k++, i++) {
        this.group[i] = gi;
        this.zone[i] = this.intern(this.zones, pick(g.timezones, uniform(scenario.seed, salt, k, 1)));
        this.firmware[i] = this.version(pick(g.firmware, uniform(scenario.seed, salt, k, 2)));
      }
    });
  }

  private intern(list: string[], value: string): number {
    const at = list.indexOf(value);
    if (at >= 0) return at;
    list.push(value);
    return list.length - 1;
  }

  version(v: string): number {
    return this.intern(this.versions, v);
  }

  groupOf(i: number): FleetGroup {
    return this.scenario.fleet[this.group[i]!]!;
  }

  id(i: number): string {
    const g = this.group[i]!;
    const k = i - this.starts[g]!;
    const width = String(this.scenario.fleet[g]!.count - 1).length;
    return `${this.scenario.fleet[g]!.idPrefix}${String(k).padStart(Math.max(4, width), '0')}`;
  }

  /** The index of a device id of this fleet; -1 for any other id. */
  indexOf(id: string): number {
    for (let g = 0; g < this.scenario.fleet.length; g++) {
      const prefix = this.scenario.fleet[g]!.idPrefix;
      if (!id.startsWith(prefix)) continue;
      const k = Number(id.slice(prefix.length));
      if (!Number.isInteger(k) || k < 0 || k >= this.scenario.fleet[g]!.count) continue;
      // One prefix may start another's ("veh-" and "veh-1"): the id must be exactly this group's spelling.
      const i = this.starts[g]! + k;
      if (this.id(i) === id) return i;
    }
    return -1;
  }

  zoneOf(i: number): string {
    return this.zones[this.zone[i]!]!;
  }

  firmwareOf(i: number): string {
    return this.versions[this.firmware[i]!]!;
  }

  connectivity(i: number): Connectivity {
    return new Connectivity(this.groupOf(i).profile, {
      seed: this.scenario.seed,
      index: i,
      zone: this.zoneOf(i),
    });
  }

  heartbeatMs(i: number): number {
    return heartbeatMs(this.groupOf(i).profile, { seed: this.scenario.seed, index: i, zone: this.zoneOf(i) });
  }

  /** Device i's value of tag `key`, or null when its group has no such tag. */
  tagOf(i: number, key: string): string | null {
    const g = this.groupOf(i);
    const t = g.tags.findIndex(([k]) => k === key);
    if (t < 0) return null;
    const k = i - this.starts[this.group[i]!]!;
    return pick(g.tags[t]![1], uniform(this.scenario.seed, textSalt(g.idPrefix), k, 10 + t));
  }

  /** The registry record of device i (no last_seen: it has not been heard from yet). */
  record(i: number): DeviceRecord {
    const g = this.groupOf(i);
    const salt = textSalt(g.idPrefix);
    const k = i - this.starts[this.group[i]!]!;
    const tags = Object.fromEntries(
      g.tags.map(([key, values], t) => [key, pick(values, uniform(this.scenario.seed, salt, k, 10 + t))]),
    );
    return {
      id: this.id(i),
      firmwareVersion: this.firmwareOf(i),
      hardwareType: g.hardwareType,
      timezone: this.zoneOf(i),
      tags,
      lastSeen: null,
    };
  }

  /** Probability that device i's update to `release` (name@version) fails. */
  failureProbability(i: number, release: string): number {
    const f = this.groupOf(i).failureRate;
    return f.release[release] ?? f.hardware[this.groupOf(i).hardwareType] ?? f.default;
  }
}
