/**
 * Compiles a filter AST to a WHERE condition with Kysely's expression builder: every value is a bound
 * parameter, and the SQL is the subset SQLite and PostgreSQL share (LIKE with an explicit ESCAPE, no GLOB,
 * no JSON functions). Its meaning is `matchesFilter`'s; filter-sql.test.ts checks one against the other.
 *
 * Negation is pushed down to the leaves (De Morgan), and each leaf has a positive and a negative form
 * that are exact complements once NULL columns are accounted for. SQL's NOT over a NULL is NULL, so a
 * plain NOT would drop the devices without a value that `!=` must match.
 */
import { type Expression, type ExpressionBuilder, type SqlBool, sql } from 'kysely';
import { DEVICE_STATUSES, type DeviceStatus, type StatusThresholds } from '../../core/device.js';
import {
  type FilterNode,
  hasWildcard,
  type KeyRange,
  type OrderOp,
  resolveTime,
  type TextField,
} from '../../core/filter/index.js';
import { KM_PER_DEGREE, lonScaleAt } from '../../core/telemetry.js';
import type { Database } from '../schema.js';

type Eb = ExpressionBuilder<Database, 'devices'>;
type Condition = Expression<SqlBool>;

export interface FilterSqlContext {
  now: number;
  thresholds: StatusThresholds;
}

const TEXT_COLUMNS = {
  id: 'devices.id',
  name: 'devices.name',
  hardware: 'devices.hardware_type',
  timezone: 'devices.timezone',
  location: 'devices.location',
  customer: 'devices.customer',
  admission: 'devices.admission',
} as const satisfies Record<TextField, string>;
const NOT_NULL_TEXT = new Set<TextField>(['id', 'name', 'admission']);
const FLIP: Record<OrderOp, OrderOp> = { '<': '>=', '<=': '>', '>': '<=', '>=': '<' };

export function compileFilter(eb: Eb, node: FilterNode, ctx: FilterSqlContext): Condition {
  return compile(eb, node, ctx, false);
}

const anyOf = (eb: Eb, parts: Condition[]): Condition =>
  parts.length === 0 ? eb.lit(false) : parts.length === 1 ? parts[0]! : eb.or(parts);
const allOf = (eb: Eb, parts: Condition[]): Condition =>
  parts.length === 0 ? eb.lit(true) : parts.length === 1 ? parts[0]! : eb.and(parts);

function compile(eb: Eb, node: FilterNode, ctx: FilterSqlContext, negate: boolean): Condition {
  switch (node.kind) {
    case 'and':
    case 'or': {
      const parts = node.children.map((c) => compile(eb, c, ctx, negate));
      return (node.kind === 'and') !== negate ? allOf(eb, parts) : anyOf(eb, parts);
    }
    case 'not':
      return compile(eb, node.child, ctx, !negate);
    case 'status': {
      // Statuses partition the devices, so the complement of a set of statuses is the other statuses.
      const wanted = DEVICE_STATUSES.filter((s) => node.values.includes(s) !== negate);
      return anyOf(
        eb,
        wanted.map((s) => statusCondition(eb, s, ctx)),
      );
    }
    case 'text': {
      const column = TEXT_COLUMNS[node.field];
      const exact = node.values.filter((v) => !(node.glob && hasWildcard(v)));
      const globs = node.values.filter((v) => node.glob && hasWildcard(v));
      const parts: Condition[] = [];
      if (exact.length > 0) {
        parts.push(exact.length === 1 ? eb(column, '=', exact[0]!) : eb(column, 'in', exact));
      }
      // The one raw fragment: Kysely has no builder for LIKE … ESCAPE. The pattern is still a bound parameter.
      for (const g of globs) parts.push(sql<SqlBool>`${eb.ref(column)} like ${globToLike(g)} escape '\\'`);
      const positive = anyOf(eb, parts);
      if (!negate) return positive;
      return NOT_NULL_TEXT.has(node.field)
        ? eb.not(positive)
        : eb.or([eb(column, 'is', null), eb.not(positive)]);
    }
    case 'tag': {
      // Uncorrelated IN: evaluated once through the (key, value, device_id) index. device_id is NOT NULL,
      // so NOT IN is the plain complement.
      const tagged = eb
        .selectFrom('device_tags as t')
        .select('t.device_id')
        .where('t.key', '=', node.key)
        .where('t.value', 'in', node.values);
      return eb('devices.id', negate ? 'not in' : 'in', tagged);
    }
    case 'firmware': {
      const positive = anyOf(
        eb,
        node.ranges.map((r) => rangeCondition(eb, r)),
      );
      return negate ? eb.or([eb('devices.firmware_key', 'is', null), eb.not(positive)]) : positive;
    }
    case 'time': {
      const at = resolveTime(node.value, ctx.now);
      if (node.field === 'created') return eb('devices.created_at', negate ? FLIP[node.op] : node.op, at);
      if (!negate) return eb('devices.last_seen', node.op, at);
      return eb.or([eb('devices.last_seen', 'is', null), eb('devices.last_seen', FLIP[node.op], at)]);
    }
    case 'never_seen':
      return eb('devices.last_seen', negate ? 'is not' : 'is', null);
    // The reported terms are uncorrelated INs over their own tables (device_id NOT NULL): NOT IN is the exact
    // complement, devices that never reported included, as `!=` means.
    case 'telemetry': {
      const reported = eb
        .selectFrom('telemetry_latest as l')
        .select('l.device_id')
        .where('l.name', '=', node.name)
        .where('l.value', node.op, node.value);
      return eb('devices.id', negate ? 'not in' : 'in', reported);
    }
    case 'inventory': {
      const reported = eb
        .selectFrom('device_inventory as i')
        .select('i.device_id')
        .where(`i.${node.field}`, 'in', node.values);
      return eb('devices.id', negate ? 'not in' : 'in', reported);
    }
    case 'package': {
      const installed = eb
        .selectFrom('device_packages as p')
        .select('p.device_id')
        .where('p.name', '=', node.name)
        .where(() =>
          anyOf(
            eb,
            node.ranges.map((r) => rangeCondition(eb, r, 'p.version_key')),
          ),
        );
      return eb('devices.id', negate ? 'not in' : 'in', installed);
    }
    case 'near':
    case 'box': {
      const inside = node.kind === 'near' ? nearCondition(eb, node) : boxCondition(eb, node);
      const [lat, lon] = ['devices.geo_lat', 'devices.geo_lon'] as const;
      if (!negate) return eb.and([eb(lat, 'is not', null), eb(lon, 'is not', null), inside]);
      return eb.or([eb(lat, 'is', null), eb(lon, 'is', null), eb.not(inside)]);
    }
    case 'member': {
      // Uncorrelated IN, as tags: device_id is NOT NULL, so NOT IN is the complement.
      const members = eb
        .selectFrom('group_members as g')
        .select('g.device_id')
        .where('g.group_id', '=', node.groupId);
      return eb('devices.id', negate ? 'not in' : 'in', members);
    }
    case 'group':
      // The store expands groups (core/filter/expand.ts) before it compiles; one left here is a bug.
      throw new Error(`group ${node.name} reached the SQL compiler unexpanded`);
    case 'config_drift': {
      // Drift is one condition on device_config (0034): `= false` is its exact complement, devices without a row in.
      const drifting = eb
        .selectFrom('device_config as dc')
        .select('dc.device_id')
        .where('dc.desired_hash', 'is not', null)
        .where((w) =>
          w.or([w('dc.applied_hash', 'is', null), w('dc.applied_hash', '!=', w.ref('dc.desired_hash'))]),
        );
      return eb('devices.id', node.value !== negate ? 'in' : 'not in', drifting);
    }
  }
}

/**
 * Exactly `deviceStatus()` with the device's own thresholds: online while now - last_seen <= its class's
 * offline_after (docs/connectivity.md), or the server-wide one for a device in no class, and so on.
 */
function statusCondition(eb: Eb, status: DeviceStatus, ctx: FilterSqlContext): Condition {
  const live = eb('devices.decommissioned_at', 'is', null);
  const offline = silentBefore('offline_after_ms', ctx);
  const abandoned = silentBefore('abandoned_after_ms', ctx);
  switch (status) {
    case 'decommissioned':
      return eb('devices.decommissioned_at', 'is not', null);
    case 'unknown':
      return eb.and([live, eb('devices.last_seen', 'is', null)]);
    case 'online':
      return eb.and([live, eb('devices.last_seen', '>=', offline)]);
    case 'offline':
      return eb.and([live, eb('devices.last_seen', '<', offline), eb('devices.last_seen', '>=', abandoned)]);
    case 'abandoned':
      return eb.and([live, eb('devices.last_seen', '<', abandoned)]);
  }
}

/**
 * The instant a device must have been heard from since to be within `column`: now minus its class's figure
 * (migration 0040), or minus the server-wide threshold for a device in no class. A device has both figures or
 * neither, and a class's abandoned_after exceeds its offline_after, as `deviceStatus` assumes.
 */
export function silentBefore(
  column: 'offline_after_ms' | 'abandoned_after_ms',
  ctx: FilterSqlContext,
  table = 'devices',
) {
  const { offlineAfterMs, abandonedAfterMs } = ctx.thresholds;
  const fallback =
    column === 'offline_after_ms' ? offlineAfterMs : Math.max(offlineAfterMs, abandonedAfterMs);
  return sql<number>`(${ctx.now} - coalesce(${sql.ref(`${table}.${column}`)}, ${fallback}))`;
}

/** A double-precision parameter: the same arithmetic in both databases, whatever type the number would infer. */
const real = (n: number) => sql<number>`cast(${n} as double precision)`;

/** `nearDistanceSq` (core/telemetry.ts) written out in SQL, operation for operation, so both round alike. */
function nearCondition(eb: Eb, node: Extract<FilterNode, { kind: 'near' }>): Condition {
  const dy = sql`((${eb.ref('devices.geo_lat')} - ${real(node.lat)}) * ${real(KM_PER_DEGREE)})`;
  const dx = sql`((${eb.ref('devices.geo_lon')} - ${real(node.lon)}) * ${real(lonScaleAt(node.lat))})`;
  return sql<SqlBool>`(${dy} * ${dy} + ${dx} * ${dx}) <= ${real(node.km * node.km)}`;
}

function boxCondition(eb: Eb, node: Extract<FilterNode, { kind: 'box' }>): Condition {
  const lat = eb.and([eb('devices.geo_lat', '>=', node.south), eb('devices.geo_lat', '<=', node.north)]);
  const west = eb('devices.geo_lon', '>=', node.west);
  const east = eb('devices.geo_lon', '<=', node.east);
  return eb.and([lat, node.west <= node.east ? eb.and([west, east]) : eb.or([west, east])]);
}

function rangeCondition(eb: Eb, { lower, upper }: KeyRange, column = 'devices.firmware_key'): Condition {
  // A key column of the devices or of a joined table (device_packages.version_key).
  const key = sql.ref<string | null>(column);
  if (lower && upper && lower.key === upper.key && lower.inclusive && upper.inclusive)
    return eb(key, '=', lower.key);
  const parts: Condition[] = [];
  if (lower) parts.push(eb(key, lower.inclusive ? '>=' : '>', lower.key));
  if (upper) parts.push(eb(key, upper.inclusive ? '<=' : '<', upper.key));
  return parts.length === 0 ? eb(key, 'is not', null) : allOf(eb, parts);
}

/** `*` → `%`, `?` → `_`; the user's own `%`, `_` and `\` are escaped so they match themselves. */
export function globToLike(glob: string): string {
  return glob
    .replace(/[\\%_]/g, '\\$&')
    .replace(/\*/g, '%')
    .replace(/\?/g, '_');
}
