/**
 * The in-memory meaning of a filter for one device: used for single devices (does the device that just
 * heartbeated match?) and as the oracle the SQL compiler is tested against. Never to filter a fleet.
 */
import { type Device, deviceStatus, type StatusThresholds } from '../device.js';
import { versionKey } from '../semver.js';
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
        deviceStatus(device.lastSeen, device.decommissionedAt, ctx.now, ctx.thresholds),
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
  }
}
