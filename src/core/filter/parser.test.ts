import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetError } from '../errors.js';
import { versionKey } from '../semver.js';
import type { FilterNode } from './ast.js';
import { parseFilter } from './parser.js';

const key = (v: string) => versionKey(v)!;
const exact = (v: string) => ({
  lower: { key: key(v), inclusive: true },
  upper: { key: key(v), inclusive: true },
});
const DAY = 86_400_000;

function syntaxError(text: string): FleetError {
  try {
    parseFilter(text);
  } catch (e) {
    if (e instanceof FleetError && e.code === 'FILTER_SYNTAX') return e;
    throw e;
  }
  throw new Error(`parsed: ${text}`);
}

describe('parseFilter', () => {
  it('parses the README example', () => {
    expect(
      parseFilter(
        'status=online and tag.region in (northeast, west) and firmware < 2.2.0 and last_seen > 30d ago',
      ),
    ).toEqual({
      kind: 'and',
      children: [
        { kind: 'status', values: ['online'] },
        { kind: 'tag', key: 'region', values: ['northeast', 'west'] },
        { kind: 'firmware', ranges: [{ lower: null, upper: { key: key('2.2.0'), inclusive: false } }] },
        { kind: 'time', field: 'last_seen', op: '>', value: { kind: 'relative', ms: 30 * DAY } },
      ],
    });
  });

  it('returns undefined for an empty or blank filter (match everything)', () => {
    expect(parseFilter('')).toBeUndefined();
    expect(parseFilter('  \t\n ')).toBeUndefined();
  });

  it('applies precedence not > and > or, and parentheses', () => {
    const a: FilterNode = { kind: 'text', field: 'hardware', values: ['a'], glob: false };
    const b: FilterNode = { kind: 'text', field: 'hardware', values: ['b'], glob: false };
    const c: FilterNode = { kind: 'text', field: 'hardware', values: ['c'], glob: false };
    expect(parseFilter('hardware=a or hardware=b and hardware=c')).toEqual({
      kind: 'or',
      children: [a, { kind: 'and', children: [b, c] }],
    });
    expect(parseFilter('(hardware=a or hardware=b) and hardware=c')).toEqual({
      kind: 'and',
      children: [{ kind: 'or', children: [a, b] }, c],
    });
    expect(parseFilter('not hardware=a and hardware=b')).toEqual({
      kind: 'and',
      children: [{ kind: 'not', child: a }, b],
    });
    expect(parseFilter('NOT (hardware=a OR hardware=b)')).toEqual({
      kind: 'not',
      child: { kind: 'or', children: [a, b] },
    });
    expect(parseFilter('not not hardware=a')).toEqual({ kind: 'not', child: { kind: 'not', child: a } });
    expect(parseFilter('((hardware=a))')).toEqual(a);
  });

  it('reads keywords, field names and statuses case-insensitively, tag keys and values as written', () => {
    expect(parseFilter('Status = ONLINE And TAG.Region IN (NorthEast)')).toEqual({
      kind: 'and',
      children: [
        { kind: 'status', values: ['online'] },
        { kind: 'tag', key: 'Region', values: ['NorthEast'] },
      ],
    });
  });

  it('compiles != and not in to not over = and in', () => {
    expect(parseFilter('status != online')).toEqual({
      kind: 'not',
      child: { kind: 'status', values: ['online'] },
    });
    expect(parseFilter('status not in (online, offline, online)')).toEqual({
      kind: 'not',
      child: { kind: 'status', values: ['online', 'offline'] },
    });
    expect(parseFilter('tag.x != y')).toEqual({
      kind: 'not',
      child: { kind: 'tag', key: 'x', values: ['y'] },
    });
  });

  it('marks id and name values as globs, other text fields as literal, quoted or not', () => {
    expect(parseFilter('id = truck-*')).toEqual({
      kind: 'text',
      field: 'id',
      values: ['truck-*'],
      glob: true,
    });
    expect(parseFilter('name in ("a*", b?)')).toEqual({
      kind: 'text',
      field: 'name',
      values: ['a*', 'b?'],
      glob: true,
    });
    expect(parseFilter('location = "New York, NY"')).toEqual({
      kind: 'text',
      field: 'location',
      values: ['New York, NY'],
      glob: false,
    });
    for (const field of ['hardware', 'timezone', 'customer'] as const) {
      expect(parseFilter(`${field} = 'x*'`)).toEqual({ kind: 'text', field, values: ['x*'], glob: false });
    }
    expect(parseFilter('timezone = America/New_York')).toMatchObject({ values: ['America/New_York'] });
    expect(parseFilter('name = "and"')).toMatchObject({ values: ['and'] });
  });

  it('parses the reported terms: telemetry, inventory and location', () => {
    expect(parseFilter('telemetry.disk_free_pct < 10')).toEqual({
      kind: 'telemetry',
      name: 'disk_free_pct',
      op: '<',
      value: 10,
    });
    expect(parseFilter('telemetry.temp_c != -2.5')).toEqual({
      kind: 'not',
      child: { kind: 'telemetry', name: 'temp_c', op: '=', value: -2.5 },
    });
    expect(parseFilter('inventory.os = "Debian 12"')).toEqual({
      kind: 'inventory',
      field: 'os',
      values: ['Debian 12'],
    });
    expect(parseFilter('inventory.package.openssl < 3.0.11')).toMatchObject({
      kind: 'package',
      name: 'openssl',
      ranges: [{ lower: null, upper: { inclusive: false } }],
    });
    expect(parseFilter('location near (34.05, -118.24, 50km)')).toEqual({
      kind: 'near',
      lat: 34.05,
      lon: -118.24,
      km: 50,
    });
    expect(parseFilter('location near (0, 0, 500m)')).toMatchObject({ km: 0.5 });
    expect(parseFilter('location within (32.5, -124.5, 42, -114)')).toEqual({
      kind: 'box',
      south: 32.5,
      west: -124.5,
      north: 42,
      east: -114,
    });
    // `location` alone is still the operator-set text.
    expect(parseFilter('location = "near"')).toMatchObject({ kind: 'text', field: 'location' });
  });

  it('resolves firmware versions and ranges to key bounds', () => {
    const bound = (v: string, inclusive: boolean) => ({ key: key(v), inclusive });
    expect(parseFilter('firmware = 2.2.0')).toEqual({ kind: 'firmware', ranges: [exact('2.2.0')] });
    expect(parseFilter('firmware = v2.3')).toEqual({ kind: 'firmware', ranges: [exact('2.3.0')] });
    expect(parseFilter('firmware < 2.2.0')).toEqual({
      kind: 'firmware',
      ranges: [{ lower: null, upper: bound('2.2.0', false) }],
    });
    expect(parseFilter('firmware <= 2.2.0')).toEqual({
      kind: 'firmware',
      ranges: [{ lower: null, upper: bound('2.2.0', true) }],
    });
    expect(parseFilter('firmware > 2.2.0')).toEqual({
      kind: 'firmware',
      ranges: [{ lower: bound('2.2.0', false), upper: null }],
    });
    expect(parseFilter('firmware >= 3.0.0-rc.1')).toEqual({
      kind: 'firmware',
      ranges: [{ lower: bound('3.0.0-rc.1', true), upper: null }],
    });
    expect(parseFilter('firmware = ^2.1.0')).toEqual({
      kind: 'firmware',
      ranges: [{ lower: bound('2.1.0', true), upper: bound('3.0.0-0', false) }],
    });
    expect(parseFilter('firmware != 2.x')).toEqual({
      kind: 'not',
      child: {
        kind: 'firmware',
        ranges: [{ lower: bound('2.0.0-0', true), upper: bound('3.0.0-0', false) }],
      },
    });
    expect(parseFilter('firmware in (~2.1.0, 2.2.0, *)')).toEqual({
      kind: 'firmware',
      ranges: [
        { lower: bound('2.1.0', true), upper: bound('2.2.0-0', false) },
        exact('2.2.0'),
        { lower: null, upper: null },
      ],
    });
  });

  it('resolves times: relative, absolute, a whole day for =, and never', () => {
    const at = Date.UTC(2024, 9, 20, 14);
    expect(parseFilter('last_seen <= 2024-10-20T14:00:00Z')).toEqual({
      kind: 'time',
      field: 'last_seen',
      op: '<=',
      value: { kind: 'absolute', ms: at },
    });
    expect(parseFilter('created >= 90s ago')).toMatchObject({ value: { kind: 'relative', ms: 90_000 } });
    for (const [text, ms] of [
      ['10m', 600_000],
      ['2h', 7_200_000],
      ['1w', 7 * DAY],
      ['5s', 5_000],
    ] as const) {
      expect(parseFilter(`last_seen < ${text} AGO`)).toMatchObject({
        op: '<',
        value: { kind: 'relative', ms },
      });
    }
    const day = Date.UTC(2024, 9, 20);
    expect(parseFilter('created = 2024-10-20')).toEqual({
      kind: 'and',
      children: [
        { kind: 'time', field: 'created', op: '>=', value: { kind: 'absolute', ms: day } },
        { kind: 'time', field: 'created', op: '<', value: { kind: 'absolute', ms: day + DAY } },
      ],
    });
    expect(parseFilter('last_seen = never')).toEqual({ kind: 'never_seen' });
    expect(parseFilter('last_seen != Never')).toEqual({ kind: 'not', child: { kind: 'never_seen' } });
  });
});

describe('parseFilter errors', () => {
  it.each([
    ['firmware <', 11, "expected a value after '<', found end of input"],
    ['status=online and tag.region in (northeast, west) and firmware <', 65, "expected a value after '<'"],
    ['status=online and', 18, "expected a field after 'and', found end of input"],
    ['status=online or or', 18, "expected a field after 'or', found keyword 'or'"],
    ['= online', 1, "expected a field, found '='"],
    ['"status" = online', 1, 'expected a field, found "status"'],
    [
      'status online',
      8,
      "expected an operator (=, !=, <, <=, >, >=, in, not in) after 'status', found 'online'",
    ],
    ['status = online offline', 17, "expected 'and', 'or' or end of input, found 'offline'"],
    ['status = online)', 16, "expected 'and', 'or' or end of input, found ')'"],
    ['(status = online', 17, "expected 'and', 'or' or ')', found end of input"],
    ['status = and', 10, "expected a value after '=', found keyword 'and' (quote it to use it as a value)"],
    ['status in online', 11, "expected '(' after 'in', found 'online'"],
    ['status in ()', 12, "expected a value after '(', found ')'"],
    ['status in (online offline)', 19, "expected ',' or ')', found 'offline'"],
    [
      'status = sleeping',
      10,
      "unknown status 'sleeping'; expected one of unknown, online, offline, abandoned",
    ],
    ['status < online', 8, "'<' cannot compare status: only firmware, last_seen and created are ordered"],
    ['name >= b', 6, "'>=' cannot compare name"],
    ['tag.region > a', 12, "'>' cannot compare tag.region"],
    ['colour = red', 1, "unknown field 'colour'; known fields: status, id, name, tag.<key>, firmware"],
    ['tag. = x', 5, "invalid tag key ''"],
    ['tag.a*b = x', 5, "invalid tag key 'a*b'"],
    ['firmware = banana', 12, "expected a version (2.2.0) or a range (^2.1.0, ~2.1.0, 2.x), found 'banana'"],
    ['firmware < ^2.1.0', 12, 'a range can only be used with =, != or in'],
    ['firmware < banana', 12, "expected a version (2.2.0) after '<', found 'banana'"],
    ['last_seen > 30d', 16, "expected 'ago' after '30d', found end of input"],
    [
      'last_seen > yesterday',
      13,
      "expected a date (2024-10-20), an instant (2024-10-20T14:00:00Z) or a relative time (30d ago) after '>', found 'yesterday'",
    ],
    ['last_seen > 2024-10-20T14:00', 13, 'expected a date'],
    ['last_seen > 9999999999999999w ago', 13, "duration '9999999999999999w' is too large"],
    ['last_seen > never', 13, "'never' can only be used with = or !="],
    ['last_seen = 30d ago', 13, "'=' on last_seen takes 'never' or a date (2024-10-20), found '30d'"],
    ['last_seen = 2024-10-20T14:00:00Z', 13, "'=' on last_seen takes 'never' or a date"],
    ['created = never', 11, "'=' on created takes a date (2024-10-20), found 'never'"],
    ['created in (2024-10-20)', 9, "'in' cannot be used with created"],
    ['not', 4, "expected a field after 'not', found end of input"],
    ['name = "open', 8, 'unterminated string'],
    ['telemetry.disk_free_pct < ten', 27, "expected a number (10, 2.5, -3) after '<', found 'ten'"],
    ['telemetry.a*b < 1', 11, "invalid metric name 'a*b'"],
    ['telemetry.x in (1, 2)', 13, "'in' cannot be used with telemetry.x"],
    ['inventory.os < 12', 14, "'<' cannot compare inventory.os"],
    ['inventory.package.openssl < banana', 29, "expected a version (2.2.0) after '<', found 'banana'"],
    ['location near (34.05, -118.24)', 15, 'location near takes (latitude, longitude, distance)'],
    ['location near (95, 0, 1km)', 16, "expected a number from -90 to 90, found '95'"],
    ['location near (34, 0, 5mi)', 23, "expected a distance up to 20000km (50km, 500m), found '5mi'"],
    ['location within (35, 0, 34, 1)', 18, "the box's south 35 is north of its north 34"],
    ['config.drift = maybe', 16, "expected true or false after '=', found 'maybe'"],
    ['config.drift in (true)', 14, "'in' cannot be used with config.drift"],
    ['config.drift < true', 14, "'<' cannot compare config.drift"],
  ])('%j → column %i', (text, column, message) => {
    const e = syntaxError(text);
    expect(e.message.startsWith(`column ${column}: `), e.message).toBe(true);
    expect(e.message).toContain(message);
    expect(e.details).toMatchObject({ column });
    expect(e.details).toHaveProperty('expected');
    expect(e.details).toHaveProperty('found');
  });

  it('limits nesting depth with a FleetError, not a stack overflow', () => {
    expect(syntaxError(`${'('.repeat(5000)}status=online${')'.repeat(5000)}`).message).toMatch(
      /nested too deeply/,
    );
    expect(syntaxError(`${'not '.repeat(5000)}status=online`).message).toMatch(/nested too deeply/);
    expect(parseFilter(`${'('.repeat(50)}status=online${')'.repeat(50)}`)).toEqual({
      kind: 'status',
      values: ['online'],
    });
  });

  const VOCABULARY = [
    'status',
    'id',
    'name',
    'tag.region',
    'tag.',
    'firmware',
    'hardware',
    'last_seen',
    'created',
    'location',
    '=',
    '!=',
    '<',
    '<=',
    '>',
    '>=',
    'in',
    'not',
    'and',
    'or',
    'ago',
    'never',
    '(',
    ')',
    ',',
    '"',
    "'",
    '\\',
    'online',
    'sleeping',
    '2.2.0',
    '^2.1.0',
    '2.x',
    '*',
    '30d',
    '2024-10-20',
    '2024-10-20T14:00:00Z',
    'a b',
    '!',
  ];
  const isFilterError = (text: string) => {
    try {
      parseFilter(text);
      return true;
    } catch (e) {
      return e instanceof FleetError && e.code === 'FILTER_SYNTAX' && /^column \d+: /.test(e.message);
    }
  };

  it('never fails with anything but a FILTER_SYNTAX FleetError on random text', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), isFilterError), { numRuns: 3_000 });
  });

  it('never fails with anything but a FILTER_SYNTAX FleetError on random token soup', () => {
    const soup = fc
      .array(fc.constantFrom(...VOCABULARY), { maxLength: 25 })
      .chain((words) => fc.constantFrom(words.join(' '), words.join('')));
    fc.assert(fc.property(soup, isFilterError), { numRuns: 5_000 });
  });
});
