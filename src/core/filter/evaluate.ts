/**
 * The in-memory meaning of a filter for one device: used for single devices (does the device that just
 * heartbeated match?) and as the oracle the SQL compiler is tested against. Never to filter a fleet.
 */
import { type Device, deviceStatus, type StatusThresholds } from '../device.js';
import { FleetError } from '../errors.js';
import { versionKey } from '../semver.js';
import { lonScaleAt, nearDistanceSq, packageVersionKey } from '../telemetry.js';
import { compareOrder, type FilterNode, type KeyRange, resolveTime, type TextField } from './ast.js';
import { globToRegExp, hasWildcard } from './glob.js';

export interface FilterContext {
  now: number;
  thresholds: StatusThresholds;
}

function textOf(device: Device, field: TextField): string | null {
  switch (field) {
    case 'id':
      return device.id;
    case 'name':
      return device.name;
    case 'hardware':
      return device.hardwareType;
    case 'timezone':
      return device.timezone;
    case 'location':
      return device.location;
    case 'customer':
      return device.customer;
    case 'admission':
      return device.admission;
  }
}

function inRange(key: string, range: KeyRange): boolean {
  const { lower, upper } = range;
  return (
    (lower === null || (lower.inclusive ? key >= lower.key : key > lower.key)) &&
    (upper === null || (upper.inclusive ? key <= upper.key : key < upper.key))
  );
}

/** Whether the device matches; an absent filter matches every device. Status is derived, never read. */
export function matchesFilter(node: FilterNode | undefined, device: Device, ctx: FilterContext): boolean {
  if (node === undefined) return true;
  switch (node.kind) {
    case 'and':
      return node.children.every((c) => matchesFilter(c, device, ctx));
    case 'or':
      return node.children.some((c) => matchesFilter(c, device, ctx));
    case 'not':
      return !matchesFilter(node.child, device, ctx);
    case 'status':
      return node.values.includes(
        deviceStatus(
          device.lastSeen,
          device.decommissionedAt,
          ctx.now,
          device.connectivity ?? ctx.thresholds,
        ),
      );
    case 'text': {
      const value = textOf(device, node.field);
      if (value === null) return false;
      return node.values.some((v) =>
        node.glob && hasWildcard(v) ? globToRegExp(v).test(value) : v === value,
      );
    }
    case 'tag': {
      const value = Object.hasOwn(device.tags, node.key) ? device.tags[node.key] : undefined;
      return value !== undefined && node.values.includes(value);
    }
    case 'firmware': {
      const key = device.firmwareVersion === null ? null : versionKey(device.firmwareVersion);
      return key !== null && node.ranges.some((r) => inRange(key, r));
    }
    case 'time': {
      const value = node.field === 'last_seen' ? device.lastSeen : device.createdAt;
      return value !== null && compareOrder(value, node.op, resolveTime(node.value, ctx.now));
    }
    case 'never_seen':
      return device.lastSeen === null;
    case 'telemetry': {
      const latest = device.reported?.latest;
      const value = latest !== undefined && Object.hasOwn(latest, node.name) ? latest[node.name] : undefined;
      if (value === undefined) return false;
      return node.op === '=' ? value === node.value : compareOrder(value, node.op, node.value);
    }
    case 'inventory': {
      const value = device.reported?.[node.field] ?? null;
      return value !== null && node.values.includes(value);
    }
    case 'package': {
      const packages = device.reported?.packages;
      const version =
        packages !== undefined && Object.hasOwn(packages, node.name) ? packages[node.name] : undefined;
      const key = version === undefined ? null : packageVersionKey(version);
      return key !== null && node.ranges.some((r) => inRange(key, r));
    }
    case 'near': {
      const geo = device.telemetry.geo;
      if (geo === null) return false;
      const distanceSq = nearDistanceSq(geo.lat, geo.lon, node.lat, node.lon, lonScaleAt(node.lat));
      return distanceSq <= node.km * node.km;
    }
    case 'box': {
      const geo = device.telemetry.geo;
      if (geo === null || geo.lat < node.south || geo.lat > node.north) return false;
      return node.west <= node.east
        ? geo.lon >= node.west && geo.lon <= node.east
        : geo.lon >= node.west || geo.lon <= node.east;
    }
    case 'group':
    case 'member':
      // Group terms are resolved in SQL only (store/shared/groups.ts); the filters evaluated here (enrollment
      // claims) refuse them when they are made.
      throw new FleetError('FILTER_SYNTAX', 'a group term cannot be used in this filter', {
        group: node.kind === 'group' ? node.name : node.groupId,
      });
    case 'config_drift':
      return (device.configDrift ?? false) === node.value;
  }
}
