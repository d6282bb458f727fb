import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DURATION_LIMITS } from '../core/duration.js';
import { isFleetError } from '../core/errors.js';
import { parseRolloutSpec } from '../core/rollout/spec.js';
import { storedSpecText, toRolloutDocument } from '../core/rollout/spec-document.js';
import { storedSpec } from './stored-spec.js';

const UNITS = ['ms', 's', 'm', 'h', 'd', 'w'] as const;
/** Durations around and far beyond every bound, whole and fractional. */
const duration = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 200 }), fc.constantFrom(...UNITS)).map(([n, u]) => `${n}${u}`),
  fc
    .tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 999 }), fc.constantFrom(...UNITS))
    .map(([n, f, u]) => `${n}.${f}${u}`),
  fc.constantFrom('30d', '7d', '90d', '31d', '8d', '91d', '13w', '20000000w', '99999999999999999999w'),
);
const percentages = fc
  .uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 4 })
  .map((ps) => [...ps.sort((a, b) => a - b), 100]);
const specInput = fc.record(
  {
    name: fc.constantFrom('r', 'nightly push'),
    release: fc.constantFrom('fw@2.0.0', 'fw@v1.2.3-rc.1'),
    filter: fc.constantFrom('', 'status=online', 'tag.region in (west, east)'),
    strategy: fc.constantFrom('immediate', 'progressive', 'scheduled', 'on_connect'),
    phaseWaits: fc.array(fc.option(duration, { nil: undefined }), { maxLength: 5 }),
    percentages,
    window: fc.oneof(
      fc.record({
        start: fc.constantFrom('02:00', '22:30'),
        end: fc.constantFrom('04:00', '01:15'),
        days: fc.subarray(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], { minLength: 1 }),
        timezone: fc.constantFrom('device', 'Europe/Berlin'),
      }),
      fc.record({ cron: fc.constantFrom('0 2 * * 1-5', '30 3 1 * *'), duration }),
    ),
    timeout: fc.option(duration, { nil: undefined }),
    retry: fc.option(
      fc.record(
        {
          attempts: fc.integer({ min: 1, max: 100 }),
          backoff: duration,
          factor: fc.double({ min: 1, max: 10, noNaN: true }),
          max_backoff: duration,
        },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    ),
    max_concurrent: fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
    scheduled_at: fc.option(fc.constantFrom('2026-12-01T02:00:00Z', '9999-12-31T23:59:59.999+14:00'), {
      nil: undefined,
    }),
  },
  { requiredKeys: ['name', 'release', 'filter', 'strategy', 'percentages', 'phaseWaits', 'window'] },
);

type SpecRecord = typeof specInput extends fc.Arbitrary<infer T> ? T : never;

/** The generated record as a spec body: phases only for progressive, a window only where it belongs. */
function body(r: SpecRecord) {
  const spec: Record<string, unknown> = {
    name: r.name,
    release: r.release,
    filter: r.filter,
    strategy: r.strategy,
  };
  if (r.strategy === 'progressive') {
    spec.phases = r.percentages.map((percentage, i) =>
      r.phaseWaits[i] === undefined ? { percentage } : { percentage, wait: r.phaseWaits[i] },
    );
  }
  if (r.strategy === 'scheduled' || r.strategy === 'on_connect') spec.window = r.window;
  for (const key of ['timeout', 'retry', 'max_concurrent', 'scheduled_at'] as const) {
    if (r[key] !== undefined) spec[key] = r[key];
  }
  return spec;
}

describe('stored specs', () => {
  it('every accepted spec is stored as a document that reads back to the same spec', () => {
    let accepted = 0;
    fc.assert(
      fc.property(specInput, (r) => {
        let spec: ReturnType<typeof parseRolloutSpec>;
        try {
          spec = parseRolloutSpec(body(r));
        } catch (e) {
          if (isFleetError(e) && e.code === 'VALIDATION') return;
          throw e;
        }
        accepted++;
        expect(spec.timeoutMs).toBeLessThanOrEqual(DURATION_LIMITS.timeout);
        expect(spec.retry.maxBackoffMs).toBeLessThanOrEqual(DURATION_LIMITS.backoff);
        for (const p of spec.phases) expect(p.waitMs).toBeLessThanOrEqual(DURATION_LIMITS.wait);
        const text = storedSpecText(spec);
        expect(storedSpec(text)).toEqual(spec);
      }),
      { numRuns: 400, seed: 13 },
    );
    // The generator must reach the accepting side too, or the property proves nothing.
    expect(accepted).toBeGreaterThan(50);
  });

  it('a rollout stored before the duration bounds (a 45d timeout, a 26w phase wait) still reads', () => {
    const old = {
      ...toRolloutDocument(
        parseRolloutSpec({ name: 'old', release: 'fw@1.0.0', filter: '', strategy: 'immediate' }),
      ),
      timeout: '45d',
    };
    expect(storedSpec(JSON.stringify(old)).timeoutMs).toBe(45 * 86_400_000);
    const phased = {
      name: 'old',
      release: 'fw@1.0.0',
      filter: '',
      strategy: 'progressive',
      phases: [{ percentage: 10, wait: '26w' }, { percentage: 100 }],
    };
    expect(storedSpec(JSON.stringify(phased)).phases[0]?.waitMs).toBe(26 * 604_800_000);
  });

  it('the same document is refused as input: the bounds hold for new rollouts', () => {
    expect(() =>
      parseRolloutSpec({ name: 'n', release: 'fw@1.0.0', filter: '', strategy: 'immediate', timeout: '45d' }),
    ).toThrow(/^timeout: "45d" is longer than the maximum of 30d$/);
  });
});
