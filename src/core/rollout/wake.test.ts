import { describe, expect, it } from 'vitest';
import { devicesReady, type WakeCandidate, windowOpened } from './wake.js';
import { type MaintenanceWindow, WEEKDAYS } from './window.js';

const window: MaintenanceWindow = { start: 120, end: 240, days: [...WEEKDAYS], cron: null, timezone: 'UTC' };
const at = (h: number, m = 0) => Date.UTC(2026, 0, 5, h, m);
const candidate = (id: string, over: Partial<WakeCandidate> = {}): WakeCandidate => ({
  id,
  deviceId: `d-${id}`,
  phase: 0,
  purpose: 'update',
  notBefore: null,
  deviceZone: null,
  ...over,
});
const rollout = (over: Record<string, unknown> = {}) => ({
  state: 'running' as const,
  currentPhase: 0,
  startedAt: at(0),
  spec: { window: null, missedWindow: 'next_window' as const, endAt: null, scheduledAt: null },
  ...over,
});

describe('devicesReady', () => {
  it('wakes updates only as far as free slots go, switches and rollbacks always', () => {
    const r = devicesReady(
      rollout(),
      [candidate('a'), candidate('b'), candidate('c', { purpose: 'rollback' }), candidate('d')],
      at(1),
      1,
    );
    expect(r.wake.map((c) => c.id)).toEqual(['a', 'c']);
    expect(r.slotsLeft).toBe(0);
  });

  it('leaves out what the offer would hold: a later phase, a backoff, a closed window', () => {
    const r = devicesReady(
      rollout({ spec: { window, missedWindow: 'next_window', endAt: null, scheduledAt: null } }),
      [candidate('later', { phase: 1 }), candidate('backoff', { notBefore: at(3) }), candidate('ok')],
      at(2, 30),
      10,
    );
    expect(r.wake.map((c) => c.id)).toEqual(['ok']);
    expect(
      devicesReady(rollout({ spec: { ...rollout().spec, window } }), [candidate('x')], at(1), 10).wake,
    ).toEqual([]);
  });
});

describe('windowOpened', () => {
  it('is true only when a window starts after `from` and at or before `to`', () => {
    expect(windowOpened(window, 'UTC', at(1), at(2))).toBe(true);
    expect(windowOpened(window, 'UTC', at(2), at(3))).toBe(false);
    expect(windowOpened(window, 'UTC', at(1), at(1, 59))).toBe(false);
    expect(windowOpened(window, 'America/New_York', at(1), at(3))).toBe(false);
  });
});
