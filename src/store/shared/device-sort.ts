/** Keyset pagination over devices: the sort expressions and the opaque cursors that resume them. */
import type { ExpressionBuilder, ExpressionWrapper } from 'kysely';
import { FleetError } from '../../core/errors.js';
import type { DeviceRow } from '../device-row.js';
import type { Database } from '../schema.js';
import type { DeviceSortField } from '../store.js';

type Eb = ExpressionBuilder<Database, 'devices'>;
type SortValue = string | number;

/** Nulls are coalesced so every row has a comparable key and pages never skip or repeat a device. */
export function sortExpression(field: DeviceSortField) {
  return (eb: Eb): ExpressionWrapper<Database, 'devices', SortValue> => {
    switch (field) {
      case 'id':
        return eb.ref('id');
      case 'name':
        return eb.ref('name');
      case 'last_seen':
        return eb.fn.coalesce('last_seen', eb.val(-1));
      case 'firmware':
        return eb.fn.coalesce('firmware_key', eb.val(''));
      case 'hardware':
        return eb.fn.coalesce('hardware_type', eb.val(''));
      case 'created':
        return eb.ref('created_at');
    }
  };
}

function sortValue(field: DeviceSortField, row: DeviceRow): SortValue {
  switch (field) {
    case 'id':
      return row.id;
    case 'name':
      return row.name;
    case 'last_seen':
      return row.last_seen === null ? -1 : Number(row.last_seen);
    case 'firmware':
      return row.firmware_key ?? '';
    case 'hardware':
      return row.hardware_type ?? '';
    case 'created':
      return Number(row.created_at);
  }
}

export function encodeCursor(field: DeviceSortField, row: DeviceRow): string {
  return Buffer.from(JSON.stringify([sortValue(field, row), row.id])).toString('base64url');
}

export function decodeCursor(cursor: string): [SortValue, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      (typeof parsed[0] === 'string' || typeof parsed[0] === 'number') &&
      typeof parsed[1] === 'string'
    ) {
      return [parsed[0], parsed[1]];
    }
  } catch {
    // fall through to the error below
  }
  throw new FleetError('BAD_CURSOR', 'cursor is not one this server issued; start again without it');
}
