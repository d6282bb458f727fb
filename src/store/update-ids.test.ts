import { afterEach, describe, expect, it, vi } from 'vitest';
import { newUpdateId } from './update-ids.js';

describe('newUpdateId', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('gives unique ids in the order they were made, many in one millisecond', () => {
    const ids = Array.from({ length: 100_000 }, () => newUpdateId());
    expect(new Set(ids).size).toBe(ids.length);
    // Byte-wise, as both databases compare ids.
    expect([...ids].sort()).toEqual(ids);
    expect(ids[0]).toMatch(/^upd_[0-9a-f]{24}$/);
  });

  it('keeps the order when the clock goes back', () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1), toFake: ['Date'] });
    const before = newUpdateId();
    vi.setSystemTime(Date.UTC(2025, 0, 1));
    expect(newUpdateId() > before).toBe(true);
  });

  it('differs from the ids another process makes at the same instant', async () => {
    vi.useFakeTimers({ now: Date.UTC(2030, 0, 1), toFake: ['Date'] });
    const mine = newUpdateId();
    vi.resetModules();
    const other = (await import('./update-ids.js')).newUpdateId();
    // Same time and sequence, another process's random part.
    expect(other.slice(0, 18)).toBe(mine.slice(0, 18));
    expect(other).not.toBe(mine);
  });
});
