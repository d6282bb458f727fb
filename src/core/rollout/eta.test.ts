import { describe, expect, it } from 'vitest';
import {
  type EtaDevice,
  estimateEta,
  expectedConnection,
  meanGapFromHistory,
  observedThroughput,
} from './eta.js';
import { WEEKDAYS } from './window.js';

const HOUR = 3_600_000;
const now = Date.parse('2024-10-21T12:00:00Z'); // a Monday
const online = (n: number, phase = 0): EtaDevice[] =>
  Array.from({ length: n }, () => ({ phase, pattern: { kind: 'online' } }));

describe('expectedConnection', () => {
  it('is now for an online device', () => {
    expect(expectedConnection({ kind: 'online' }, now)).toBe(now);
  });
  it('is the next point of a periodic device cadence, even when it is overdue', () => {
    expect(
      expectedConnection({ kind: 'periodic', lastSeen: now - 2 * HOUR, meanGapMs: 24 * HOUR }, now),
    ).toBe(now + 22 * HOUR);
    expect(
      expectedConnection({ kind: 'periodic', lastSeen: now - 50 * HOUR, meanGapMs: 24 * HOUR }, now),
    ).toBe(now + 22 * HOUR);
  });
  it('is the first hour by which an hour-of-week profile has connected with probability ½', () => {
    const probabilities = Array<number>(168).fill(0);
    probabilities[2 * 24 + 9] = 0.3; // Tuesday 09:00 UTC
    probabilities[2 * 24 + 10] = 0.3; // 0.7 × 0.7 = 0.49 still away after this hour
    expect(expectedConnection({ kind: 'hourly', probabilities }, now)).toBe(
      Date.parse('2024-10-22T10:00:00Z'),
    );
  });
  it('is now when the current hour alone makes a connection likely', () => {
    const probabilities = Array<number>(168).fill(0);
    probabilities[1 * 24 + 12] = 0.9; // Monday 12:00 UTC, the current hour
    expect(expectedConnection({ kind: 'hourly', probabilities }, now + 60_000)).toBe(now + 60_000);
  });
  it('is unknown without a pattern or when the profile never reaches ½', () => {
    expect(expectedConnection({ kind: 'unknown' }, now)).toBeNull();
    expect(expectedConnection({ kind: 'hourly', probabilities: Array(168).fill(0) }, now)).toBeNull();
  });
});

describe('estimateEta', () => {
  it('for an all-online fleet at steady throughput is remaining / throughput', () => {
    const eta = estimateEta({ devices: online(1000), throughputPerHour: 400, maxConcurrent: 100, now });
    expect(eta.finishAt).toBeCloseTo(now + 2.5 * HOUR, -1);
    expect(eta.throughputPerHour).toBe(400);
  });
  it('is pushed to the next expected connection of an offline device with a known pattern', () => {
    const late: EtaDevice = { pattern: { kind: 'periodic', lastSeen: now - 2 * HOUR, meanGapMs: 24 * HOUR } };
    const eta = estimateEta({
      devices: [...online(10), late],
      throughputPerHour: 100,
      maxConcurrent: 100,
      now,
    });
    expect(eta.finishAt).toBeCloseTo(now + 22 * HOUR + HOUR / 100, -1);
  });
  it('leaves out devices with no known pattern and counts them', () => {
    const eta = estimateEta({
      devices: [...online(4), { pattern: { kind: 'unknown' } }],
      throughputPerHour: 4,
      maxConcurrent: 10,
      now,
    });
    expect(eta.unknownDevices).toBe(1);
    expect(eta.finishAt).toBeCloseTo(now + HOUR, -1);
  });
  it('before anything finished assumes max_concurrent updates per typical update time, capped by the rate', () => {
    expect(estimateEta({ devices: online(1), maxConcurrent: 100, now }).throughputPerHour).toBe(400);
    expect(
      estimateEta({ devices: online(1), maxConcurrent: 100, ratePerMinute: 2, now }).throughputPerHour,
    ).toBe(120);
  });
  it('starts devices only inside their maintenance window, in their own zone', () => {
    const window = { start: 120, end: 240, timezone: 'device', days: WEEKDAYS, cron: null };
    const devices: EtaDevice[] = [
      { pattern: { kind: 'online' }, timezone: 'America/New_York' },
      { pattern: { kind: 'online' }, timezone: 'America/Los_Angeles' },
    ];
    const eta = estimateEta({ devices, throughputPerHour: 60, maxConcurrent: 10, window, now });
    // 02:00 in Los Angeles (PDT) is 09:00 UTC the next day, three hours after New York's.
    expect(eta.finishAt).toBe(Date.parse('2024-10-22T09:00:00Z') + 60_000);
  });
  it('starts nothing before scheduled_at', () => {
    const eta = estimateEta({
      devices: online(60),
      throughputPerHour: 60,
      maxConcurrent: 10,
      notBefore: now + 5 * HOUR,
      now,
    });
    expect(eta.finishAt).toBeCloseTo(now + 6 * HOUR, -1);
  });
  it('chains phases: each starts at the previous gate (soak end or quorum finished, whichever is later)', () => {
    const eta = estimateEta({
      devices: [...online(10, 0), ...online(100, 1), ...online(890, 2)],
      phases: [
        { name: 'canary', waitMs: 24 * HOUR },
        { name: 'early', waitMs: 12 * HOUR },
        { name: 'full', waitMs: 0 },
      ],
      throughputPerHour: 20,
      maxConcurrent: 100,
      now,
    });
    const [canary, early, full] = eta.phases;
    expect(canary).toMatchObject({ devices: 10, startAt: now, gateAt: now + 24 * HOUR });
    expect(canary!.finishAt).toBeCloseTo(now + 0.5 * HOUR, -1);
    // 100 devices at 20/h: half have finished after 2.5 h, well within the 12 h soak.
    expect(early!.startAt).toBe(now + 24 * HOUR);
    expect(early!.gateAt).toBe(now + 36 * HOUR);
    expect(early!.finishAt).toBeCloseTo(now + 29 * HOUR, -1);
    // 890 devices at 20/h: the gate waits for the quorum (445 → 22.25 h).
    expect(full!.gateAt).toBeCloseTo(now + 36 * HOUR + 22.25 * HOUR, -1);
    expect(eta.finishAt).toBeCloseTo(now + 36 * HOUR + 44.5 * HOUR, -1);
  });
  it('keeps the recorded start of phases already running', () => {
    const eta = estimateEta({
      devices: online(5, 1),
      phases: [
        { name: 'canary', waitMs: 24 * HOUR, startedAt: now - 48 * HOUR },
        { name: 'rest', waitMs: 0, startedAt: now - 20 * HOUR },
      ],
      throughputPerHour: 5,
      maxConcurrent: 10,
      now,
    });
    expect(eta.phases[0]!.gateAt).toBe(now - 20 * HOUR);
    expect(eta.phases[1]!.startAt).toBe(now - 20 * HOUR);
    expect(eta.finishAt).toBeCloseTo(now + HOUR, -1);
  });
});

describe('learning from history', () => {
  it('meanGapFromHistory is the mean gap between successive connections', () => {
    expect(meanGapFromHistory([now, now - 10 * HOUR, now - 4 * HOUR])).toBe(5 * HOUR);
    expect(meanGapFromHistory([now])).toBeNull();
  });
  it('observedThroughput counts finishes in the last hour', () => {
    expect(observedThroughput([now - 10, now - 30 * 60_000, now - 2 * HOUR], now)).toBe(2);
    expect(observedThroughput([now - 10, now - 30 * 60_000], now, 30 * 60_000)).toBe(2);
  });
});
