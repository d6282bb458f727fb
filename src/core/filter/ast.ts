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
  | { kind: 'never_seen' };

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
