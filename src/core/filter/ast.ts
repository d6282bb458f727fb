/**
 * The filter AST. Values are resolved at parse time (versions to their `versionKey`, dates to epoch ms);
 * only relative times wait for `now`, so a parsed filter can be kept and evaluated later.
 */
import type { DeviceStatus } from '../device.js';

/** Text columns; `id` and `name` values are globs (`*` any run of characters, `?` exactly one). */
export type TextField = 'id' | 'name' | 'hardware' | 'timezone' | 'location' | 'customer' | 'admission';
export type TimeField = 'last_seen' | 'created';
export type OrderOp = '<' | '<=' | '>' | '>=';

/** Absolute: ms since the epoch. Relative: `ms` before `now` (`30d ago`), resolved at evaluation. */
export type TimeValue = { kind: 'absolute'; ms: number } | { kind: 'relative'; ms: number };

export interface KeyBound {
  key: string;
  inclusive: boolean;
}

/** A span of `versionKey` strings; a null bound is unbounded. An exact version has equal inclusive bounds. */
export interface KeyRange {
  lower: KeyBound | null;
  upper: KeyBound | null;
}

/**
 * `!=` and `not in` parse as `not` over `=` / `in`: the exact complement, so devices without the value
 * (no such tag, no parseable firmware, no hardware type) match them. Leaves with several values match any.
 */
export type FilterNode =
  | { kind: 'and'; children: FilterNode[] }
  | { kind: 'or'; children: FilterNode[] }
  | { kind: 'not'; child: FilterNode }
  | { kind: 'status'; values: DeviceStatus[] }
  | { kind: 'text'; field: TextField; values: string[]; glob: boolean }
  | { kind: 'tag'; key: string; values: string[] }
  /** The device's firmware parses as a version and its key lies in one of the ranges. */
  | { kind: 'firmware'; ranges: KeyRange[] }
  /** Never true for a null time (a device never seen). */
  | { kind: 'time'; field: TimeField; op: OrderOp; value: TimeValue }
  /** `last_seen = never`. */
  | { kind: 'never_seen' }
  /** `telemetry.<name> <op> N`: the latest value the device reported for that metric; never true without one. */
  | { kind: 'telemetry'; name: string; op: '=' | OrderOp; value: number }
  /** `inventory.os` / `inventory.kernel` of the latest inventory, exact values; never true without one. */
  | { kind: 'inventory'; field: InventoryField; values: string[] }
  /** `inventory.package.<name>`: installed, and its upstream version's key (core/telemetry.ts) in a range. */
  | { kind: 'package'; name: string; ranges: KeyRange[] }
  /** `location near (lat, lon, 50km)` on the reported coordinates (core/telemetry.ts says how distance is taken). */
  | { kind: 'near'; lat: number; lon: number; km: number }
  /** `location within (south, west, north, east)`; west > east crosses the antimeridian. */
  | { kind: 'box'; south: number; west: number; north: number; east: number }
  /** `group = NAME` as parsed; `expandGroups` (expand.ts) replaces it before a filter is compiled or evaluated. */
  | { kind: 'group'; name: string }
  /** Membership of a static group (by its id): what `group = NAME` of a static group expands to. */
  | { kind: 'member'; groupId: string }
  /** `config.drift = true`: a configuration is desired for the device and it has not applied exactly that one. */
  | { kind: 'config_drift'; value: boolean };

export type InventoryField = 'os' | 'kernel';

export function resolveTime(value: TimeValue, now: number): number {
  return value.kind === 'absolute' ? value.ms : now - value.ms;
}

export function compareOrder(a: number | string, op: OrderOp, b: number | string): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}
