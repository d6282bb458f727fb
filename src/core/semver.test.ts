import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFleetError } from './errors.js';
import {
  compareVersions,
  formatVersion,
  inRange,
  parseRange,
  parseVersion,
  parseVersionLenient,
  versionKey,
} from './semver.js';

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Versions as text, biased towards collisions so equal numbers and shared prefixes are common. */
const number = fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 9_999_999_999 }));
const numericId = fc.oneof(
  fc.integer({ min: 0, max: 12 }).map(String),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
);
const alphaId = fc
  .string({ unit: fc.constantFrom('a', 'b', 'z', 'A', '-', '0', '1', '9'), minLength: 1, maxLength: 6 })
  .filter((s) => !/^\d+$/.test(s));
const prerelease = fc.array(fc.oneof(numericId, alphaId), { minLength: 0, maxLength: 4 });
const build = fc.array(fc.stringMatching(/^[0-9A-Za-z-]{1,4}$/), { maxLength: 2 });
const versionText = fc
  .tuple(number, number, number, prerelease, build, fc.boolean())
  .map(
    ([a, b, c, pre, meta, v]) =>
      (v ? 'v' : '') + formatVersion({ major: a, minor: b, patch: c, prerelease: pre, build: meta }),
  );

describe('parseVersion', () => {
  it('parses strict SemVer with an optional leading v', () => {
    expect(parseVersion('v2.3.1')).toEqual({ major: 2, minor: 3, patch: 1, prerelease: [], build: [] });
    expect(parseVersion('1.0.0-alpha.1+build.5')).toEqual({
      major: 1,
      minor: 0,
      patch: 0,
      prerelease: ['alpha', '1'],
      build: ['build', '5'],
    });
    expect(parseVersion('1.0.0-x-y-z.--')?.prerelease).toEqual(['x-y-z', '--']);
  });

  it.each([
    '',
    '2.3',
    '2',
    '01.2.3',
    '1.02.3',
    '1.2.3-01',
    '1.2.3-',
    '1.2.3-a..b',
    '1.2.3+',
    '1.2.3.4',
    ' 1.2.3',
    '1.2.3 ',
    'x1.2.3',
    '1.2.3-ä',
    '12345678901.0.0',
  ])('rejects %j', (text) => {
    expect(parseVersion(text)).toBeUndefined();
  });

  it('is lenient about missing minor and patch only when asked', () => {
    expect(parseVersionLenient('2.3')).toMatchObject({ major: 2, minor: 3, patch: 0 });
    expect(parseVersionLenient('v2')).toMatchObject({ major: 2, minor: 0, patch: 0 });
    expect(parseVersionLenient('2.3-rc.1')?.prerelease).toEqual(['rc', '1']);
    expect(parseVersionLenient('2.')).toBeUndefined();
    expect(versionKey('2.3')).toBe(versionKey('2.3.0'));
  });
});

describe('compareVersions', () => {
  it('follows SemVer precedence (the spec example chain)', () => {
    const chain = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '2.2.0',
      '2.10.0',
      '3.0.0-rc.1',
      '3.0.0',
    ];
    for (let i = 0; i < chain.length; i++) {
      for (let j = 0; j < chain.length; j++) {
        expect(compareVersions(chain[i]!, chain[j]!), `${chain[i]} vs ${chain[j]}`).toBe(Math.sign(i - j));
      }
    }
  });

  it('ignores build metadata and accepts parsed versions', () => {
    expect(compareVersions('1.0.0+a', '1.0.0+b')).toBe(0);
    expect(compareVersions(parseVersion('2.10.0')!, parseVersion('2.2.0')!)).toBe(1);
  });

  it('throws a VALIDATION FleetError for text that is not a version', () => {
    expect(() => compareVersions('banana', '1.0.0')).toThrow(/not a semantic version/);
    try {
      compareVersions('1.0.0', 'x');
    } catch (e) {
      expect(isFleetError(e) && e.code).toBe('VALIDATION');
    }
  });

  it('is antisymmetric', () => {
    fc.assert(
      fc.property(versionText, versionText, (a, b) => compareVersions(a, b) === -compareVersions(b, a)),
    );
  });
});

describe('versionKey', () => {
  it('is null for text that is not a version', () => {
    expect(versionKey('banana')).toBeNull();
    expect(versionKey('')).toBeNull();
  });

  it('orders the traps byte-wise', () => {
    expect(versionKey('2.10.0')! > versionKey('2.2.0')!).toBe(true);
    expect(versionKey('3.0.0-rc.1')! < versionKey('3.0.0')!).toBe(true);
    expect(versionKey('1.0.0-alpha')! < versionKey('1.0.0-alpha-1')!).toBe(true);
    expect(versionKey('1.0.0-alpha.1')! < versionKey('1.0.0-alpha-1')!).toBe(true);
    expect(versionKey('1.0.0-9')! < versionKey('1.0.0-10')!).toBe(true);
    expect(versionKey('1.0.0-99')! < versionKey('1.0.0-a')!).toBe(true);
  });

  it('byte-wise order of keys equals SemVer precedence', () => {
    fc.assert(
      fc.property(versionText, versionText, (a, b) => {
        expect(byteOrder(versionKey(a)!, versionKey(b)!)).toBe(compareVersions(a, b));
      }),
      { numRuns: 5_000 },
    );
  });

  it('uses only ASCII, so byte order and JS string order agree', () => {
    fc.assert(fc.property(versionText, (a) => /^[\x21-\x7e]+$/.test(versionKey(a)!)));
  });
});

describe('parseRange', () => {
  const range = (text: string) => {
    const r = parseRange(text);
    if (!r) throw new Error(`not a range: ${text}`);
    return r;
  };
  const bounds = (text: string) => {
    const r = range(text);
    return [r.lower && formatVersion(r.lower), r.upper && formatVersion(r.upper)];
  };

  it('computes inclusive lower and exclusive upper bounds', () => {
    expect(bounds('^1.2.3')).toEqual(['1.2.3', '2.0.0-0']);
    expect(bounds('^0.2.3')).toEqual(['0.2.3', '0.3.0-0']);
    expect(bounds('^0.0.3')).toEqual(['0.0.3', '0.0.4-0']);
    expect(bounds('~1.2.3')).toEqual(['1.2.3', '1.3.0-0']);
    expect(bounds('1.2.x')).toEqual(['1.2.0-0', '1.3.0-0']);
    expect(bounds('1.2.*')).toEqual(['1.2.0-0', '1.3.0-0']);
    expect(bounds('1.x')).toEqual(['1.0.0-0', '2.0.0-0']);
    expect(bounds('1.X.x')).toEqual(['1.0.0-0', '2.0.0-0']);
    expect(bounds('*')).toEqual([null, null]);
    expect(bounds('9999999999.x')).toEqual(['9999999999.0.0-0', null]);
  });

  it.each(['1.2.3', '^1.2', '~1', '1.x.3', 'x.1', '^', '^x', '1.2.3.x', ''])('rejects %j', (text) => {
    expect(parseRange(text)).toBeUndefined();
  });

  it('keeps prereleases simple: bounds compare by precedence', () => {
    expect(inRange('2.0.0-rc.1', range('^1.2.3'))).toBe(false);
    expect(inRange('1.9.9', range('^1.2.3'))).toBe(true);
    expect(inRange('1.2.3-beta', range('^1.2.3'))).toBe(false);
    expect(inRange('2.0.0-rc.1', range('2.x'))).toBe(true);
    expect(inRange('2.3.0', range('~2.2.0'))).toBe(false);
    expect(inRange('0.0.0-0', range('*'))).toBe(true);
  });
});
