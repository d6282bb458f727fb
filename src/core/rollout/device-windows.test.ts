import { describe, expect, it } from 'vitest';
import {
  effectiveWindows,
  inAnyWindow,
  nextOpening,
  parseDeviceWindows,
  resolveWindows,
} from './device-windows.js';
import { holdFor, type OfferQuestion } from './offer.js';
import { parseRolloutSpec } from './spec.js';
import { storedSpecText, toRolloutDocument } from './spec-document.js';
import type { MaintenanceWindow } from './window.js';
import { WEEKDAYS } from './window.js';

const at = (iso: string) => Date.parse(iso);
const base = { name: 'r', release: 'fw@2.0.0', filter: '', strategy: 'on_connect' };
const deviceDefined = parseRolloutSpec({
  ...base,
  window: 'device_defined',
  fallback_window: { start: '02:00', end: '04:00' },
});

const question = (
  now: string,
  deviceWindows: readonly MaintenanceWindow[] | null,
  deferredUntil: number | null = null,
) =>
  ({
    rollout: {
      state: 'running',
      currentPhase: 0,
      startedAt: at('2026-01-05T00:00:00Z'),
      spec: deviceDefined,
    },
    update: { phase: 0, notBefore: null, purpose: 'update' },
    deviceZone: 'America/New_York',
    deviceWindows,
    deferredUntil,
    now: at(now),
  }) satisfies OfferQuestion;

describe('device windows', () => {
  const own = parseDeviceWindows([
    { start: '21:30', end: '23:30' },
    { start: '06:00', end: '07:00', days: ['sun'] },
  ]);

  it("replace the rollout's window under device_defined; the fallback holds devices without any", () => {
    expect(effectiveWindows(deviceDefined, own)).toBe(own);
    expect(effectiveWindows(deviceDefined, null)).toEqual([deviceDefined.window]);
    const ordinary = parseRolloutSpec({ ...base, window: { start: '02:00', end: '04:00' } });
    expect(effectiveWindows(ordinary, own)).toEqual([ordinary.window]);
    const noFallback = parseRolloutSpec({ ...base, window: 'device_defined' });
    expect(effectiveWindows(noFallback, null)).toEqual([]);
    expect(inAnyWindow([], 'UTC', 0)).toBe(true);
  });

  it('open when any of them is, in the device zone; the hold points at the next opening', () => {
    // Monday 2026-01-05 22:00 in New York = 03:00Z the next day.
    expect(holdFor(question('2026-01-06T03:00:00Z', own))).toBeNull();
    // Sunday 2026-01-11 06:30 New York.
    expect(holdFor(question('2026-01-11T11:30:00Z', own))).toBeNull();
    // Monday 06:30 New York: the Sunday window is shut; the next opening is 21:30 (15 h, capped to an hour).
    const hold = holdFor(question('2026-01-05T11:30:00Z', own));
    expect(hold).toEqual({ reason: 'outside its window (America/New_York)', retryAfterSec: 3600 });
    expect(nextOpening(own, 'America/New_York', at('2026-01-05T11:30:00Z'))).toBe(at('2026-01-06T02:30:00Z'));
    // Without windows of its own: the fallback 02:00–04:00 New York.
    expect(holdFor(question('2026-01-05T07:30:00Z', null))).toBeNull();
    expect(holdFor(question('2026-01-06T03:00:00Z', null))).not.toBeNull();
  });

  it('a deferral holds the update even inside a window, until it ends', () => {
    const until = at('2026-01-06T03:10:00Z');
    expect(holdFor(question('2026-01-06T03:00:00Z', own, until))).toEqual({
      reason: 'deferred by the device',
      retryAfterSec: 600,
    });
    expect(holdFor(question('2026-01-06T03:10:00Z', own, until))).toBeNull();
  });

  it('are checked with errors that name the window and its field', () => {
    const error = (input: unknown) => {
      try {
        parseDeviceWindows(input);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(error({ start: '01:00' })).toBe('windows: must be a list of windows');
    expect(error([])).toMatch(/^windows: .*1/);
    expect(error(Array.from({ length: 9 }, () => ({ start: '01:00', end: '02:00' })))).toBe(
      'windows: must have at most 8 items (found 9)',
    );
    expect(
      error([
        { start: '01:00', end: '02:00' },
        { start: '1am', end: '02:00' },
      ]),
    ).toBe('windows[1].start: must be a local time HH:MM such as 02:00');
    expect(error([{ start: '01:00', end: '02:00', when: 'always' }])).toBe(
      'windows[0].when: is not a known field',
    );
    expect(error([{ cron: '0 2 * * *' }])).toBe('windows[0].duration: is required with windows[0].cron');
    expect(error([{ start: '01:00', end: '02:00', days: Array(20_000).fill('mon') }])).toBe(
      'windows[0].days: must have at most 7 items (found 20000)',
    );
  });

  it('device_defined and the deferral budget read back from the stored document', () => {
    const spec = parseRolloutSpec({
      ...base,
      window: 'device_defined',
      fallback_window: { cron: '30 1 * * mon-fri', duration: '90m' },
      action: 'soft',
      deferral: { max_count: 3, max_total: '72h' },
    });
    expect(spec).toMatchObject({
      deviceWindows: true,
      deferral: { maxCount: 3, maxTotalMs: 72 * 3_600_000 },
    });
    const doc = toRolloutDocument(spec);
    expect(doc).toMatchObject({ window: 'device_defined', deferral: { max_count: 3, max_total: '3d' } });
    expect(parseRolloutSpec(JSON.parse(storedSpecText(spec)))).toEqual(spec);
  });
});

describe('resolveWindows', () => {
  const w = (start: number) => ({ start, end: start + 60, timezone: 'device', days: WEEKDAYS, cron: null });
  const a = w(60);
  const b = w(120);
  it("takes the device's own windows, else its groups' together, else its tags' together, else none", () => {
    const groups = [
      { name: 'zeta', windows: [b] },
      { name: 'east', windows: [a, b] },
    ];
    const tags = [{ name: 'customer=acme', windows: [w(600)] }];
    expect(resolveWindows([w(900)], groups, tags)).toEqual({ source: 'device', from: [], windows: [w(900)] });
    // The union, each window once, the groups by name.
    expect(resolveWindows(null, groups, tags)).toEqual({
      source: 'group',
      from: ['east', 'zeta'],
      windows: [a, b],
    });
    expect(resolveWindows([], [], tags)).toEqual({
      source: 'tag',
      from: ['customer=acme'],
      windows: [w(600)],
    });
    expect(resolveWindows(null, [], [])).toBeNull();
  });
});
