import { describe, expect, it } from 'vitest';
import { importRecords } from './fleet-import.js';

const serverNow = Date.parse('2026-11-22T12:00:00Z');

describe('importRecords', () => {
  it('shifts every timestamp so the file`s now maps to the server`s now', () => {
    const records = importRecords(
      {
        now: '2024-10-20T14:25:00Z',
        devices: [
          { id: 'a', last_seen: '2024-10-20T14:23:00Z' },
          { id: 'b', last_seen: '2024-10-19T14:23:00Z' },
          { id: 'c', last_seen: null },
        ],
      },
      serverNow,
    );
    expect(records[0]!.lastSeen).toBe(serverNow - 2 * 60_000);
    expect(records[1]!.lastSeen).toBe(serverNow - 86_400_000 - 2 * 60_000);
    expect(records[2]!.lastSeen).toBeNull();
  });
  it('keeps timestamps as they are when the file has no now', () => {
    const [r] = importRecords({ devices: [{ id: 'a', last_seen: '2026-11-22T11:00:00Z' }] }, serverNow);
    expect(r!.lastSeen).toBe(Date.parse('2026-11-22T11:00:00Z'));
  });
  it('leaves last_seen untouched when the file does not mention it', () => {
    const [r] = importRecords({ devices: [{ id: 'a', name: 'A' }] }, serverNow);
    expect(r).toEqual({ id: 'a', name: 'A' });
  });
  it('refuses instants without a zone, future last_seen, bad zones, bad ids and duplicates, naming the field', () => {
    expect(() => importRecords({ devices: [{ id: 'a', last_seen: '2024-10-20 14:23' }] }, serverNow)).toThrow(
      /devices\[0\]\.last_seen/,
    );
    expect(() =>
      importRecords({ devices: [{ id: 'a', last_seen: '2027-01-01T00:00:00Z' }] }, serverNow),
    ).toThrow(/in the future/);
    expect(() => importRecords({ devices: [{ id: 'a', timezone: 'Nowhere/Town' }] }, serverNow)).toThrow(
      /devices\[0\]\.timezone/,
    );
    expect(() => importRecords({ devices: [{ id: 'a b' }] }, serverNow)).toThrow(/devices\[0\]\.id/);
    expect(() => importRecords({ devices: [{ id: 'a' }, { id: 'a' }] }, serverNow)).toThrow(/appears twice/);
    expect(() => importRecords({ now: 'yesterday', devices: [] }, serverNow)).toThrow(/^now:/);
  });
});
