import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFleetError } from '../errors.js';
import { parseRolloutSpec, parseRolloutSpecText } from './spec.js';
import { toRolloutDocument } from './spec-document.js';

const base = { name: 'r', release: 'fw@2.0.0', filter: '', strategy: 'immediate' };
const error = (input: unknown) => {
  try {
    parseRolloutSpec(input);
  } catch (e) {
    if (isFleetError(e)) return e.message;
    throw e;
  }
  return 'accepted';
};

describe('parseRolloutSpec', () => {
  it('fills in every default', () => {
    const s = parseRolloutSpec(base);
    expect(s).toMatchObject({
      maxConcurrent: 100,
      retry: { attempts: 3, backoffMs: 60_000, factor: 2, maxBackoffMs: 3_600_000 },
      timeoutMs: 7_200_000,
      offline: 'queue',
      missedWindow: 'next_window',
      rollbackOnHalt: false,
      action: 'forced',
      endAt: null,
      endAction: 'stop',
      phases: [],
      window: null,
    });
    expect(Number.isInteger(s.seed)).toBe(true);
  });

  it('a progressive rollout halts and rolls back by default (seeds 000 and 001); the spec may say otherwise', () => {
    const progressive = { ...base, strategy: 'progressive', phases: [{ percentage: 100 }] };
    expect(parseRolloutSpec(progressive).rollbackOnHalt).toBe(true);
    expect(parseRolloutSpec({ ...progressive, rollback_on_halt: false }).rollbackOnHalt).toBe(false);
    expect(parseRolloutSpec({ ...base, strategy: 'rolling', batch_size: 5 }).rollbackOnHalt).toBe(false);
  });

  it.each([
    [
      { ...base, strategy: 'yolo' },
      'strategy: must be one of immediate, scheduled, progressive, on_connect, rolling, blue_green',
    ],
    [{ ...base, release: 'fw-2.0' }, 'release: "fw-2.0" must be name@version'],
    [{ ...base, window: { start: '02:00', ' ': 1 } }, 'window[" "]: is not a known field'],
    [{ ...base, release: 'fw@two' }, 'release: "two" is not a semantic version such as 1.2.3'],
    [{ ...base, filter: 'status=' }, expect.stringMatching(/^filter: column 8/)],
    [{ ...base, colour: 'red' }, 'colour: is not a known field'],
    [{ ...base, strategy: 'progressive' }, 'phases: is required for the progressive strategy'],
    [
      { ...base, strategy: 'progressive', phases: [{ percentage: 10 }, { percentage: 90 }] },
      'phases[1].percentage: the last phase must reach 100 (found 90)',
    ],
    [
      { ...base, strategy: 'progressive', phases: [{ percentage: 10, wait: 'a day' }, { percentage: 100 }] },
      'phases[0].wait: must be a duration such as 90s, 10m, 24h, 7d',
    ],
    [{ ...base, strategy: 'scheduled' }, 'window: is required for the scheduled strategy'],
    [
      { ...base, strategy: 'scheduled', window: { start: '25:00', end: '04:00' } },
      'window.start: must be a local time HH:MM such as 02:00',
    ],
    [
      { ...base, strategy: 'scheduled', window: { start: '02:00', end: '04:00', timezone: 'Mars/Base' } },
      'window.timezone: "Mars/Base" is not an IANA time zone (e.g. America/New_York) or "device"',
    ],
    [
      { ...base, strategy: 'scheduled', window: { cron: '0 2 31 2 *', duration: '1h' } },
      'window.cron: "0 2 31 2 *" never matches a date',
    ],
    [{ ...base, strategy: 'rolling' }, 'batch_size: is required for the rolling strategy'],
    [
      { ...base, batch_size: 5 },
      'batch_size: only the rolling strategy takes batch_size (this rollout is immediate)',
    ],
    [{ ...base, max_concurrent: 0 }, expect.stringMatching(/^max_concurrent: /)],
    [{ ...base, end_action: 'cancel' }, 'end_action: needs end_at'],
    [
      { ...base, scheduled_at: 'tomorrow' },
      expect.stringMatching(/^scheduled_at: must be an ISO-8601 instant/),
    ],
    [
      { ...base, rate: { per_minute: 10, growth_factor: 2 } },
      'rate.after_successes: is required when growth_factor is above 1',
    ],
  ])('refuses %j naming the field', (input, message) => {
    expect(error(input)).toEqual(message);
  });

  it('reads YAML and JSON alike, and says which when the text is broken', () => {
    const yaml = 'name: r\nrelease: fw@2.0.0\nfilter: ""\nstrategy: rolling\nbatch_size: 10\n';
    expect(parseRolloutSpecText(yaml).batchSize).toBe(10);
    expect(parseRolloutSpecText(JSON.stringify({ ...base })).strategy).toBe('immediate');
    expect(() => parseRolloutSpecText('{"name": ')).toThrow(/^spec: not valid JSON/);
  });

  it('the normalized document reads back to the same spec', () => {
    const specs = [
      {
        ...base,
        strategy: 'progressive',
        phases: [{ name: 'c', percentage: 5, wait: '90m', approval: 'manual' }, { percentage: 100 }],
      },
      {
        ...base,
        strategy: 'scheduled',
        window: { start: '22:00', end: '02:00', days: ['fri', 'sat'] },
        missed_window: 'on_connect',
      },
      {
        ...base,
        strategy: 'scheduled',
        window: { cron: '30 1 * * mon-fri', duration: '2h', timezone: 'Europe/Berlin' },
      },
      {
        ...base,
        max_concurrent_per: { tag: 'region', limit: 50 },
        rate: { per_minute: 10, growth_factor: 2, after_successes: 100 },
      },
      { ...base, end_at: '2030-01-01T00:00:00Z', end_action: 'cancel', abort: { failure_rate: 20 } },
      { ...base, strategy: 'blue_green', switch_at: 80 },
    ];
    for (const input of specs) {
      const spec = parseRolloutSpec(input);
      expect(parseRolloutSpec(toRolloutDocument(spec))).toEqual(spec);
    }
  });

  it('never throws anything but a field-named VALIDATION error on random input', () => {
    fc.assert(
      fc.property(
        fc.object({ maxDepth: 2 }),
        fc.constantFrom(...Object.keys({ ...base, phases: 0, window: 0 })),
        (junk, key) => {
          try {
            parseRolloutSpec({ ...base, [key]: junk });
          } catch (e) {
            expect(isFleetError(e) && e.code === 'VALIDATION').toBe(true);
            expect((e as Error).message).toMatch(/^(spec|[a-z_]+)(\.\w+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*: \S/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('parseRolloutSpec bounds', () => {
  const scheduled = (days: unknown[]) => ({
    ...base,
    strategy: 'scheduled',
    window: { start: '02:00', end: '04:00', days },
  });

  it('refuses a window.days list longer than 7 in linear time, whatever its items', () => {
    // ~145,000 items fit the 1 MB body limit; uniqueItems used to compare every pair (11 s for 20,000).
    for (const item of ['mon', 7, { day: 'mon' }]) {
      const started = performance.now();
      expect(error(scheduled(Array.from({ length: 145_000 }, () => item)))).toMatch(
        /^window\.days(\[0\])?: /,
      );
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  });

  it.each([
    [{ timeout: '30d' }, 'accepted'],
    [{ timeout: '30.1d' }, 'timeout: "30.1d" is longer than the maximum of 30d'],
    [
      { timeout: '99999999999999999999w' },
      'timeout: "99999999999999999999w" is longer than the maximum of 30d',
    ],
    [{ retry: { backoff: '7d', max_backoff: '1w' } }, 'accepted'],
    [{ retry: { max_backoff: '169h' } }, 'retry.max_backoff: "169h" is longer than the maximum of 7d'],
    [{ batch_size: 1_000_001, strategy: 'rolling' }, 'batch_size: must be <= 1000000'],
    [{ name: 'a\u0000b' }, 'name: must not contain a NUL character (\\u0000)'],
  ])('%j → %s', (extra, expected) => {
    expect(error({ ...base, ...extra })).toBe(expected);
  });

  it('refuses a filter longer than 4096 characters', () => {
    expect(error({ ...base, filter: `name=${'x'.repeat(5000)}` })).toMatch(
      /^filter: must not have more than 4096/,
    );
  });
});
