/**
 * Generators of fuzz requests, one module for the CI suite (test/fuzz.test.ts) and the long run (bench/fuzz.ts).
 *
 * Each operation of the OpenAPI document gets requests of four kinds:
 * - valid-ish: every parameter and body drawn from its schema, ids and names taken from the seeded world
 *   (hints), so most of them pass validation and reach the handler and the store;
 * - mutated: a valid-ish request with one to three things broken (a field replaced by a hostile value,
 *   a required one removed, an unknown one added, an array made huge, a header changed);
 * - hostile: a body, path or query made only of hostile input (deep nesting, invalid UTF-8, odd JSON);
 * - raw: what `inject()` cannot express and only a socket can (bytes outside UTF-8 in the request line,
 *   duplicate headers, bad framing); sent to a listening server.
 */
import fc from 'fast-check';
import type { FuzzOperation, FuzzParameter, JsonSchema } from './fuzz-operations.js';

/**
 * Ids and names of the seeded world, read when a case is generated (the harness refills them after a reset).
 * The canary device and release the health checks use are never in these pools.
 */
export interface FuzzHints {
  /** Devices an operator may fuzz (decommission, re-credential, import over). */
  deviceIds: string[];
  /** The device whose credential authenticated device-API cases carry. */
  selfDeviceId: string;
  updateIds: string[];
  rolloutIds: string[];
  /** `name@version` and `rel_…` references of existing releases. */
  releaseRefs: string[];
  sha256s: string[];
  webhookIds: string[];
  enrollmentToken: string;
  hardware: string[];
}

/** Which credential a case carries (resolved by the harness). */
export type FuzzAuth =
  | 'operator'
  | 'device'
  | 'none'
  | 'unknown-token'
  | 'malformed'
  | 'other-device'
  | 'empty-bearer';

export interface FuzzRequest {
  /** The operation's key, e.g. `POST /api/v1/rollouts`. */
  op: string;
  /** What kind of case this is, for reports: `valid-ish`, `mutated: …`, `hostile: …`, `raw: …`. */
  label: string;
  method: string;
  /** Path and query as sent (already encoded, possibly with broken encodings on purpose). */
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  auth: FuzzAuth;
  transport: 'inject' | 'raw';
  /** Raw only: the request line's target as bytes (replaces `url`), e.g. invalid UTF-8. */
  rawTarget?: Buffer;
  /** Raw only: header lines added as they are (duplicates, odd bytes). */
  rawHeaderLines?: string[];
  /** Raw only: send the body chunked. */
  chunked?: boolean;
}

/** A JSON literal written as is (numbers JSON.stringify cannot write, such as 1e400). */
class RawJson {
  constructor(readonly text: string) {}
}

/** JSON.stringify that writes RawJson literals as they are. */
export function toJsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${toJsonText(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ---------------------------------------------------------------------------------------------------------
// Hostile atoms

export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  'fw\u0000@1.0.0',
  '\u0001\u0002\u001b[31m\u007f',
  '\t\r\n',
  'x\r\nX-Injected: 1',
  '\ud800',
  'a\udfffb',
  '\uffff\ufffe',
  '\ufeffBOM',
  '\u202eevil',
  '💥🚀',
  'Ω≈ç√∫',
  '../../../../etc/passwd',
  '..\\..\\..\\windows\\win.ini',
  '%2e%2e%2f%2e%2e%2f',
  '/',
  '//',
  '.',
  '..',
  "' OR '1'='1",
  "'; DROP TABLE devices; --",
  '" OR ""="',
  '1; SELECT pg_sleep(5)',
  '$(reboot)',
  '`id`',
  '<script>alert(1)</script>',
  '{{7*7}}',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, sent as it is
  '${7*7}',
  '%s%s%s%n',
  '\\',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-Infinity',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  '9223372036854775808',
  '-9223372036854775809',
  '1e300',
  '1e400',
  '0x10',
  '-0',
  '2147483648',
  '9007199254740993',
  '4294967296',
];

export const HOSTILE_NUMBERS: readonly number[] = [
  0,
  -0,
  -1,
  1,
  0.5,
  -0.5,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  4_294_967_295,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  -(2 ** 31),
  -(2 ** 53),
  1e20,
  1e300,
  -1e300,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
];

/** Number literals JSON.parse reads into values JSON.stringify cannot write back. */
const RAW_NUMBERS = ['1e400', '-1e400', '9223372036854775808', '1E2', '1.0', '0.1e-400', '-0.0', '1e-7'];

/** Durations: ordinary ones, ones at plausible bounds, absurd ones, and ones that are not durations. */
export const DURATIONS: readonly string[] = [
  '0s',
  '1ms',
  '90s',
  '10m',
  '1h',
  '24h',
  '7d',
  '30d',
  '52w',
  '365d',
  '3650d',
  '5200w',
  '0.5s',
  '1.5h',
  '100000d',
  '15000000w',
  '20000000w',
  '999999999999999w',
  '99999999999999999999w',
  '9007199254740993ms',
  '0.0000001ms',
  '1e3s',
  '-1s',
  '1',
  'h',
  '1 h',
  '1H',
  '10y',
  '',
];

const FILTERS: readonly string[] = [
  '',
  'status=online',
  'status=offline or status=unknown',
  'hardware=hw-a',
  'tag.region in (north, west)',
  'tag.store=12 and hardware=hw-b',
  'firmware < 2.0.0',
  'firmware >= 1.0.0 and firmware < 99.0.0',
  'last_seen > 30d ago',
  'last_seen < 99999999999999999999w ago',
  'id=dev-001',
  'not status=decommissioned',
  "id='; drop table devices; --",
  'tag.x=\u0000',
  '((((((((((status=online))))))))))',
  '(((((',
  'firmware < 99999999999999999999.0.0',
  'timezone=Mars/Base',
  `${'status=online and '.repeat(200)}status=online`,
];

const ZONES = [
  'UTC',
  'Europe/Paris',
  'America/New_York',
  'Asia/Kolkata',
  'Mars/Base',
  '',
  'device',
  '+05:00',
];

const VERSIONS = ['1.0.0', '2.0.0', '1.2.3-rc.1', 'v3.0.0', '1.0', '01.0.0', '99999999999999999999.0.0', 'x'];

const INSTANTS = [
  '2026-11-22T12:00:00Z',
  '2026-11-23T02:00:00+01:00',
  '1970-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '2026-02-30T25:61:00Z',
  '+275760-09-13T00:00:00Z',
];

const CRONS = ['0 2 * * *', '*/5 * * * *', '0 0 31 2 *', '* * * * * *', '99 99 99 99 99', ''];

const URLS = [
  'https://hooks.example.com/fleetd',
  'http://127.0.0.1:1/x',
  'http://user:pass@hooks.example.com/',
  'http://169.254.169.254/latest/meta-data',
  'ftp://example.com/',
  'javascript:alert(1)',
  'https://',
  `https://example.com/${'a'.repeat(3000)}`,
];

// ---------------------------------------------------------------------------------------------------------
// Values from schemas

const pick = <T>(list: readonly T[]) => fc.constantFrom(...list);
const fromPool = (pool: () => readonly string[], fallback: string) =>
  fc.nat().map((i) => {
    const list = pool();
    return list.length === 0 ? fallback : list[i % list.length]!;
  });

export const hostileString = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: pick(HOSTILE_STRINGS) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    {
      weight: 2,
      arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)) }),
    },
    { weight: 1, arbitrary: pick([257, 4097, 65_537, 300_000]).map((n) => 'A'.repeat(n)) },
  );

export const hostileNumber = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 4, arbitrary: pick(HOSTILE_NUMBERS) },
    { weight: 2, arbitrary: pick(RAW_NUMBERS).map((t) => new RawJson(t)) },
    { weight: 1, arbitrary: fc.double() },
  );

/** Any JSON value of the wrong kind, or nested absurdly. */
export const hostileValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 4, arbitrary: hostileString() },
    { weight: 3, arbitrary: hostileNumber() },
    { weight: 2, arbitrary: pick([null, true, false, [], {}, [[[]]], { a: {} }, [null], ['']]) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: pick([50, 500]).map((n) => deepArray(n)) },
  );

function deepArray(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function hintFor(name: string, op: FuzzOperation, hints: FuzzHints): fc.Arbitrary<unknown> | undefined {
  const devices = () => hints.deviceIds;
  switch (name) {
    case 'id':
      if (op.path.includes('/devices/')) return fromPool(devices, 'dev-001');
      if (op.path.includes('/updates/')) return fromPool(() => hints.updateIds, 'upd_x');
      if (op.path.includes('/rollouts/')) return fromPool(() => hints.rolloutIds, 'ro_x');
      if (op.path.includes('/webhooks/')) return fromPool(() => hints.webhookIds, 'wh_x');
      return undefined;
    case 'device_id':
      return op.caller === 'operator' ? fromPool(devices, 'dev-001') : fc.constant(hints.selfDeviceId);
    case 'device':
      return fromPool(devices, 'dev-001');
    case 'devices':
      return fc.array(fromPool(devices, 'dev-001'), { minLength: 1, maxLength: 4 });
    case 'rollout':
      return fromPool(() => hints.rolloutIds, 'ro_x');
    case 'ref':
    case 'release':
      return fromPool(() => hints.releaseRefs, 'fw@1.0.0');
    case 'sha256':
      return fromPool(() => hints.sha256s, '0'.repeat(64));
    case 'enrollment_token':
      return fc.constant(hints.enrollmentToken);
    case 'hardware':
      return op.method === 'POST' && op.rawBody
        ? fc.array(
            fromPool(() => hints.hardware, 'hw-a'),
            { minLength: 1, maxLength: 3 },
          )
        : undefined;
    case 'hardware_type':
      return fromPool(() => hints.hardware, 'hw-a');
    case 'filter':
      return pick(FILTERS);
    case 'since':
    case 'expires_in':
    case 'wait':
    case 'timeout':
    case 'backoff':
    case 'max_backoff':
    case 'duration':
      return pick(DURATIONS);
    case 'timezone':
      return pick(ZONES);
    case 'version':
    case 'firmware_version':
      return pick(VERSIONS);
    case 'scheduled_at':
    case 'end_at':
      return pick(INSTANTS);
    case 'cron':
      return pick(CRONS);
    case 'url':
      return pick(URLS);
    case 'type':
      return op.path.includes('/events')
        ? pick(['device.', 'update.', 'rollout.', 'webhook.test', ''])
        : undefined;
    default:
      return undefined;
  }
}

function stringFor(schema: JsonSchema): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  if (schema.pattern) {
    // Cut, not filtered: a filter that a pattern's strings seldom pass would never end.
    const max = schema.maxLength ?? 10_000;
    return fc
      .stringMatching(new RegExp(schema.pattern))
      .map((s) => (s.length > max ? s.slice(0, max) : s.padEnd(min, 'a')));
  }
  const max = Math.min(schema.maxLength ?? 40, 200);
  if (schema.format === 'date-time') return pick(INSTANTS);
  return fc.string({ minLength: min, maxLength: Math.max(min, Math.min(max, 24)) });
}

function numberFor(schema: JsonSchema, integer: boolean): fc.Arbitrary<number> {
  const lo = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum : -1000);
  const hi = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum : lo + 1000);
  const edges = [lo, hi, lo - 1, hi + 1].filter((n) => Number.isFinite(n));
  const inside = integer
    ? fc.integer({ min: Math.ceil(lo), max: Math.max(Math.ceil(lo), Math.floor(Math.min(hi, lo + 10_000))) })
    : fc.double({ min: lo, max: hi, noNaN: true, noDefaultInfinity: true });
  return fc.oneof({ weight: 5, arbitrary: inside }, { weight: 1, arbitrary: pick(edges) });
}

/** A value that mostly satisfies `schema` (boundaries included), named `name` in its parent. */
export function validish(
  schema: JsonSchema,
  name: string,
  op: FuzzOperation,
  hints: FuzzHints,
  depth = 0,
): fc.Arbitrary<unknown> {
  const hint = hintFor(name, op, hints);
  const own = fromSchema(schema, op, hints, depth);
  if (!hint) return own;
  return fc.oneof({ weight: 3, arbitrary: hint }, { weight: 1, arbitrary: own });
}

function fromSchema(
  schema: JsonSchema,
  op: FuzzOperation,
  hints: FuzzHints,
  depth: number,
): fc.Arbitrary<unknown> {
  if (depth > 6) return fc.constant(null);
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return pick(schema.enum);
  const choices = schema.anyOf ?? schema.oneOf;
  if (choices?.length) return fc.oneof(...choices.map((s) => fromSchema(s, op, hints, depth + 1)));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  const value = ((): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'string':
        return stringFor(schema);
      case 'integer':
        return numberFor(schema, true);
      case 'number':
        return numberFor(schema, false);
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'array': {
        const item = schema.items ?? {};
        return fc.array(validish(item, '', op, hints, depth + 1), {
          minLength: schema.minItems ?? 0,
          maxLength: Math.min(schema.maxItems ?? 4, 4),
        });
      }
      case 'object':
        return objectFor(schema, op, hints, depth);
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  })();
  return schema.nullable ? fc.option(value, { nil: null, freq: 6 }) : value;
}

function objectFor(
  schema: JsonSchema,
  op: FuzzOperation,
  hints: FuzzHints,
  depth: number,
): fc.Arbitrary<unknown> {
  const props = schema.properties ?? {};
  const keys = Object.keys(props);
  if (keys.length === 0) {
    // A record (tags, metrics): a few entries of its value type.
    const extra = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : {};
    return fc.dictionary(
      fc.stringMatching(/^[A-Za-z0-9_.:-]{1,12}$/),
      fromSchema(extra, op, hints, depth + 1),
      { maxKeys: 3 },
    );
  }
  const model = Object.fromEntries(keys.map((k) => [k, validish(props[k]!, k, op, hints, depth + 1)]));
  return fc.record(model, { requiredKeys: (schema.required ?? []).filter((k) => k in props) });
}

// ---------------------------------------------------------------------------------------------------------
// Whole valid-ish bodies where the schema alone seldom gives one the handler accepts

function rolloutSpecs(hints: FuzzHints): fc.Arbitrary<Record<string, unknown>> {
  const base = fc.record({
    name: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/),
    release: fromPool(() => hints.releaseRefs.filter((r) => r.includes('@')), 'fw@2.0.0'),
    filter: pick(FILTERS.slice(0, 11)),
  });
  const policy = fc.record(
    {
      max_concurrent: fc.integer({ min: 1, max: 1000 }),
      retry: fc.record(
        {
          attempts: fc.integer({ min: 1, max: 100 }),
          backoff: pick(DURATIONS),
          max_backoff: pick(DURATIONS),
        },
        { requiredKeys: [] },
      ),
      timeout: pick(DURATIONS),
      offline: pick(['queue', 'skip']),
      action: pick(['forced', 'soft', 'download_only']),
      abort: fc.record({ failure_rate: fc.integer({ min: 1, max: 100 }) }),
      scheduled_at: pick(INSTANTS),
      end_at: pick(INSTANTS),
      seed: fc.oneof(fc.nat(), pick(HOSTILE_NUMBERS)),
    },
    { requiredKeys: [] },
  );
  const window = fc.record(
    {
      start: pick(['02:00', '23:59', '00:00']),
      end: pick(['04:00', '00:00', '02:00']),
      days: fc.oneof(
        fc.subarray(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], { minLength: 1 }),
        pick([100, 2_000, 20_000]).map((n) => Array.from({ length: n }, () => 'mon')),
      ),
      timezone: pick(ZONES),
    },
    { requiredKeys: [] },
  );
  const phases = fc.constantFrom(
    [{ percentage: 100 }],
    [{ percentage: 10, wait: '24h', success_rate: 95 }, { percentage: 50, wait: '12h' }, { percentage: 100 }],
    [{ percentage: 50, approval: 'manual' }, { percentage: 100 }],
  );
  const strategy = fc.oneof(
    fc.constant({ strategy: 'immediate' }),
    fc.constant({ strategy: 'on_connect' }),
    window.map((w) => ({ strategy: 'scheduled', window: w })),
    phases.map((p) => ({ strategy: 'progressive', phases: p })),
    fc.integer({ min: 1, max: 10 }).map((b) => ({ strategy: 'rolling', batch_size: b })),
    fc.constant({ strategy: 'blue_green' }),
  );
  return fc
    .tuple(base, strategy, fc.option(policy, { nil: undefined }))
    .map(([b, s, p]) => ({ ...b, ...s, ...(p ?? {}) }));
}

function bodyTemplate(op: FuzzOperation, hints: FuzzHints): fc.Arbitrary<unknown> | undefined {
  if (op.key === 'POST /api/v1/rollouts') return rolloutSpecs(hints);
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Mutations of a JSON body

type Path = Array<string | number>;

function pathsOf(value: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (out.length > 200) return out;
  if (Array.isArray(value)) {
    for (const [i, v] of value.slice(0, 5).entries()) pathsOf(v, [...at, i], out);
  } else if (value !== null && typeof value === 'object' && !(value instanceof RawJson)) {
    for (const [k, v] of Object.entries(value)) pathsOf(v, [...at, k], out);
  }
  return out;
}

function cloneJson(value: unknown): unknown {
  if (value instanceof RawJson) return value;
  if (Array.isArray(value)) return value.map(cloneJson);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneJson(v)]));
  }
  return value;
}

interface Mutation {
  at: number;
  kind: 'replace' | 'delete' | 'add' | 'huge' | 'wrap';
  value: unknown;
  key: string;
  size: number;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('replace', 'replace', 'replace', 'delete', 'add', 'huge', 'wrap'),
  value: hostileValue(),
  key: fc.oneof(pick(['__proto__', 'constructor', 'extra', '', '\u0000', 'a'.repeat(300)]), fc.string()),
  size: pick([100, 1_000, 10_000, 100_000]),
});

/** Applies a mutation to a copy of `value`; returns it and what was done. */
function mutate(value: unknown, m: Mutation): { value: unknown; what: string } {
  const root = cloneJson(value);
  const paths = pathsOf(root);
  const path = paths[m.at % paths.length]!;
  const where = path.join('.') || '(root)';
  const set = (v: unknown) => {
    if (path.length === 0) return v;
    const parent = path.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
    const last = path[path.length - 1]!;
    if (m.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete (parent as Record<string, unknown>)[last];
    } else (parent as Record<string, unknown>)[last] = v;
    return root;
  };
  const target = path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], root);
  switch (m.kind) {
    case 'replace':
      return { value: set(m.value), what: `${where} = ${describe(m.value)}` };
    case 'delete':
      return { value: set(undefined), what: `${where} removed` };
    case 'add':
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
        // defineProperty: an own `__proto__` key, as JSON.parse would make it.
        Object.defineProperty(target, m.key, {
          value: m.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        return { value: root, what: `${where}.${JSON.stringify(m.key).slice(0, 40)} added` };
      }
      return { value: set([target, m.value]), what: `${where} made an array` };
    case 'huge': {
      // At most about 4 MB of JSON: past the body limit already, and far from the largest string V8 can make.
      const item = Array.isArray(target) ? (target[0] ?? m.value) : target;
      const n = Math.max(1, Math.min(m.size, Math.floor(4_000_000 / Math.max(1, toJsonText(item).length))));
      if (Array.isArray(target)) {
        return { value: set(Array.from({ length: n }, () => item)), what: `${where} × ${n} items` };
      }
      if (typeof target === 'string') {
        return {
          value: set(target.repeat(Math.min(n, Math.ceil(m.size / Math.max(1, target.length))))),
          what: `${where} long`,
        };
      }
      return { value: set(Array.from({ length: n }, () => target)), what: `${where} → ${n} copies` };
    }
    case 'wrap':
      return { value: set({ value: target }), what: `${where} wrapped in an object` };
  }
}

function describe(value: unknown): string {
  const text = value instanceof RawJson ? value.text : (JSON.stringify(value) ?? String(value));
  return text.length > 60 ? `${text.slice(0, 57)}…(${text.length})` : text;
}

/** Whole bodies that are not what any schema expects. */
const hostileBodies: fc.Arbitrary<{ body: string | Buffer; what: string }> = fc.oneof(
  pick([
    '',
    'null',
    '[]',
    '"x"',
    '0',
    '1e400',
    '{',
    '{"a":',
    '{"a":1,"a":2}',
    '\ufeff{}',
    'NaN',
    '{}garbage',
  ]).map((b) => ({ body: b, what: `body ${JSON.stringify(b)}` })),
  pick([1_000, 10_000, 100_000]).map((n) => ({
    body: `${'['.repeat(n)}${']'.repeat(n)}`,
    what: `${n} nested arrays`,
  })),
  pick([1_000, 10_000, 100_000]).map((n) => ({
    body: `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`,
    what: `${n} nested objects`,
  })),
  fc
    .uint8Array({ minLength: 1, maxLength: 256 })
    .map((b) => ({ body: Buffer.from(b), what: 'random bytes' })),
  pick(['{"name":"\xff\xfe"}', '{"x":"\xc3\x28"}', '{"\xed\xa0\x80":1}']).map((t) => ({
    body: Buffer.from(t, 'latin1'),
    what: 'invalid UTF-8 in JSON',
  })),
  pick([2 * 1024 * 1024]).map((n) => ({
    body: `{"a":"${'x'.repeat(n)}"}`,
    what: 'body over the 1 MB limit',
  })),
);

// ---------------------------------------------------------------------------------------------------------
// Requests

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'text/plain',
  'text/plain; charset=latin1',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/yaml',
  'text/yaml',
  'application/octet-stream',
  'application/merge-patch+json',
  '*/*',
  'application/json, text/plain',
  ';;;',
  '',
];

const EXTRA_HEADERS: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  pick([
    'range',
    'if-range',
    'last-event-id',
    'accept',
    'x-fleetd-manifest',
    'x-fleetd-signature',
    'if-none-match',
    'accept-encoding',
    'content-encoding',
  ]),
  fc.oneof(
    pick([
      'bytes=0-',
      'bytes=0-0',
      'bytes=-0',
      'bytes=5-1',
      'bytes=99999999999999999999-',
      'bytes=0-1,2-3,4-5',
      'bytes=-99999999999999999999',
      'items=0-1',
      '1e300',
      '-1',
      'NaN',
      'gzip',
      'text/html',
      Buffer.from('{"name":"fw"}').toString('base64'),
      '!!!not-base64!!!',
      '"etag"',
    ]),
    hostileString().map((s) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 2000)),
  ),
  { maxKeys: 2 },
);

const hostileAuth = pick<FuzzAuth>(['none', 'unknown-token', 'malformed', 'other-device', 'empty-bearer']);

interface Parts {
  pathValues: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
}

function validishParts(op: FuzzOperation, hints: FuzzHints): fc.Arbitrary<Parts> {
  const paramsOf = (list: FuzzParameter[], all: boolean) =>
    fc.record(Object.fromEntries(list.map((p) => [p.name, validish(p.schema, p.name, op, hints)])), {
      requiredKeys: list.filter((p) => all || p.required).map((p) => p.name),
    });
  const template = bodyTemplate(op, hints);
  const body = op.body
    ? template
      ? fc.oneof(
          { weight: 3, arbitrary: template },
          { weight: 1, arbitrary: validish(op.body, '', op, hints) },
        )
      : validish(op.body, '', op, hints)
    : fc.constant(undefined);
  return fc.record({ pathValues: paramsOf(op.pathParams, true), query: paramsOf(op.query, false), body });
}

/** encodeURIComponent, with lone surrogates (which have no UTF-8) sent as U+FFFD. */
function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return encodeURIComponent(text.replace(/[\ud800-\udfff]/g, '\ufffd'));
  }
}

function encodeQuery(query: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      const text =
        one instanceof RawJson ? one.text : typeof one === 'object' ? JSON.stringify(one) : String(one);
      parts.push(`${encode(k)}=${encode(text)}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

function fillPath(path: string, values: Record<string, unknown>, raw: Record<string, string> = {}): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => raw[name] ?? encode(String(values[name] ?? '')));
}

function defaultAuth(op: FuzzOperation): FuzzAuth {
  return op.caller === 'operator' ? 'operator' : op.caller === 'device' ? 'device' : 'none';
}

/** Raw-byte artifact bodies: what an upload is (the bytes are the artifact whatever the type says). */
const artifactBodies = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((b) => Buffer.from(b)),
  fc.constant(Buffer.alloc(0)),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
);

function assemble(op: FuzzOperation, parts: Parts, label: string): FuzzRequest {
  const jsonBody = parts.body === undefined ? undefined : toJsonText(parts.body);
  return {
    op: op.key,
    label,
    method: op.method,
    url: `${fillPath(op.path, parts.pathValues)}${encodeQuery(parts.query)}`,
    headers: jsonBody === undefined ? {} : { 'content-type': 'application/json' },
    ...(jsonBody === undefined ? {} : { body: jsonBody }),
    auth: defaultAuth(op),
    transport: 'inject',
  };
}

function withArtifactBody(op: FuzzOperation, r: fc.Arbitrary<FuzzRequest>): fc.Arbitrary<FuzzRequest> {
  if (!op.rawBody) return r;
  return fc
    .tuple(
      r,
      artifactBodies,
      pick(['application/octet-stream', 'application/octet-stream', 'text/plain', 'application/json', '']),
    )
    .map(([req, body, type]) => ({
      ...req,
      body,
      headers: { ...req.headers, ...(type ? { 'content-type': type } : {}) },
    }));
}

export function validishRequest(op: FuzzOperation, hints: FuzzHints): fc.Arbitrary<FuzzRequest> {
  return withArtifactBody(
    op,
    validishParts(op, hints).map((p) => assemble(op, p, 'valid-ish')),
  );
}

type Breakage =
  | { on: 'body'; m: Mutation }
  | { on: 'query'; name: string; value: unknown }
  | { on: 'query-drop' }
  | { on: 'query-repeat' }
  | { on: 'path'; name: number; value: string }
  | { on: 'auth'; auth: FuzzAuth }
  | { on: 'content-type'; type: string }
  | { on: 'headers'; headers: Record<string, string> }
  | { on: 'method' };

function breakages(op: FuzzOperation): fc.Arbitrary<Breakage> {
  const options: Array<{ weight: number; arbitrary: fc.Arbitrary<Breakage> }> = [
    { weight: 1, arbitrary: hostileAuth.map((auth) => ({ on: 'auth', auth }) as Breakage) },
    { weight: 1, arbitrary: EXTRA_HEADERS.map((headers) => ({ on: 'headers', headers }) as Breakage) },
  ];
  if (op.body || op.rawBody) {
    options.push({
      weight: 1,
      arbitrary: pick(CONTENT_TYPES).map((type) => ({ on: 'content-type', type }) as Breakage),
    });
  }
  if (op.body)
    options.push({ weight: 6, arbitrary: mutationArb.map((m) => ({ on: 'body', m }) as Breakage) });
  if (op.query.length) {
    const names = op.query.map((q) => q.name);
    options.push(
      {
        weight: 4,
        arbitrary: fc
          .record({
            name: fc.oneof(
              { weight: 5, arbitrary: pick(names) },
              { weight: 1, arbitrary: pick(['unknown', '__proto__', '']) },
            ),
            value: hostileValue(),
          })
          .map(({ name, value }) => ({ on: 'query', name, value }) as Breakage),
      },
      { weight: 1, arbitrary: fc.constant({ on: 'query-drop' } as Breakage) },
      { weight: 1, arbitrary: fc.constant({ on: 'query-repeat' } as Breakage) },
    );
  }
  if (op.pathParams.length) {
    options.push({
      weight: 4,
      arbitrary: fc
        .record({
          name: fc.nat(),
          value: fc.oneof(
            hostileString().map((s) => encode(s.slice(0, 5000))),
            pick([
              '',
              '..',
              '%2e%2e',
              '%00',
              'a%00b',
              '%',
              '%zz',
              '%C3%28',
              '%ED%A0%80',
              '%FF',
              'a/b',
              '..%2F..%2Fetc',
              '%252e',
            ]),
            pick([200, 1_000, 20_000]).map((n) => 'x'.repeat(n)),
          ),
        })
        .map(({ name, value }) => ({ on: 'path', name, value }) as Breakage),
    });
  }
  options.push({ weight: 1, arbitrary: fc.constant({ on: 'method' } as Breakage) });
  return fc.oneof(...options);
}

export function mutatedRequest(op: FuzzOperation, hints: FuzzHints): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(validishParts(op, hints), fc.array(breakages(op), { minLength: 1, maxLength: 3 }))
    .map(([parts, list]) => {
      let body = parts.body;
      const query: Record<string, unknown> = { ...parts.query };
      const rawPath: Record<string, string> = {};
      const what: string[] = [];
      const extra: Partial<FuzzRequest> & { headers: Record<string, string> } = { headers: {} };
      let method = op.method;
      let tail = '';
      for (const b of list) {
        switch (b.on) {
          case 'body': {
            const m = mutate(body, b.m);
            body = m.value;
            what.push(m.what);
            break;
          }
          case 'query':
            query[b.name] = b.value;
            what.push(`?${b.name}=${describe(b.value)}`);
            break;
          case 'query-drop': {
            const first = Object.keys(query)[0];
            if (first) delete query[first];
            what.push(`?${first ?? ''} dropped`);
            break;
          }
          case 'query-repeat': {
            const name = op.query[0]!.name;
            tail += `&${encode(name)}=1&${encode(name)}=2`;
            what.push(`?${name} repeated`);
            break;
          }
          case 'path': {
            const p = op.pathParams[b.name % op.pathParams.length]!;
            rawPath[p.name] = b.value;
            what.push(`{${p.name}}=${describe(b.value)}`);
            break;
          }
          case 'auth':
            extra.auth = b.auth;
            what.push(`auth ${b.auth}`);
            break;
          case 'content-type':
            extra.headers['content-type'] = b.type;
            what.push(`content-type ${JSON.stringify(b.type)}`);
            break;
          case 'headers':
            Object.assign(extra.headers, b.headers);
            what.push(`headers ${describe(b.headers)}`);
            break;
          case 'method':
            method = op.method === 'GET' ? 'POST' : 'GET';
            what.push(`as ${method}`);
            break;
        }
      }
      const base = assemble(op, { ...parts, body, query }, '');
      const q = encodeQuery(query);
      const url = `${fillPath(op.path, parts.pathValues, rawPath)}${q || (tail ? '?' : '')}${tail}`;
      return {
        ...base,
        method,
        url,
        label: `mutated: ${what.join('; ')}`,
        headers: { ...base.headers, ...extra.headers },
        auth: extra.auth ?? base.auth,
      };
    });
}

function hostileRequest(op: FuzzOperation, hints: FuzzHints): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(validishParts(op, hints), hostileBodies, fc.option(pick(CONTENT_TYPES), { nil: undefined }))
    .map(([parts, b, type]) => {
      const base = assemble(op, parts, '');
      return {
        ...base,
        body: b.body,
        headers: { ...base.headers, 'content-type': type ?? 'application/json' },
        label: `hostile: ${b.what}${type === undefined ? '' : ` as ${JSON.stringify(type)}`}`,
      };
    });
}

/** What only a socket can send: the request line, header and framing bytes node's client would refuse. */
function rawRequest(op: FuzzOperation, hints: FuzzHints): fc.Arbitrary<FuzzRequest> {
  const variants: fc.Arbitrary<{ what: string; apply: (r: FuzzRequest) => FuzzRequest }> = fc.oneof(
    pick([
      Buffer.from([0xff, 0xfe]),
      Buffer.from([0xc3, 0x28]),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from([0x00]),
    ]).map((bytes) => ({
      what: `path bytes ${bytes.toString('hex')}`,
      apply: (r: FuzzRequest) => {
        const [path, query = ''] = r.url.split('?');
        return {
          ...r,
          rawTarget: Buffer.concat([Buffer.from(`${path}/`), bytes, Buffer.from(query ? `?${query}` : '')]),
        };
      },
    })),
    pick(['%', '%zz', '%C3%28', '%FF%FE', '%ED%A0%80']).map((esc) => ({
      what: `path escape ${esc}`,
      apply: (r: FuzzRequest) => ({ ...r, url: r.url.replace(/\/[^/?]*(\?|$)/, `/${esc}$1`) }),
    })),
    pick([17_000, 70_000]).map((n) => ({
      what: `URL of ${n} bytes`,
      apply: (r: FuzzRequest) => ({
        ...r,
        url: `${r.url}${r.url.includes('?') ? '&' : '?'}filter=${'a'.repeat(n)}`,
      }),
    })),
    pick([
      ['Content-Type: application/json', 'Content-Type: text/plain'],
      ['Authorization: Bearer nope'],
      ['Transfer-Encoding: identity'],
      ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
      ['X-Bad: a\u0001b'],
      ['X-Folded: a', ' continued'],
      ['Content-Length: 0', 'Content-Length: 5'],
      [`X-Big: ${'h'.repeat(20_000)}`],
    ]).map((lines) => ({
      what: `header lines ${describe(lines)}`,
      apply: (r: FuzzRequest) => ({ ...r, rawHeaderLines: lines }),
    })),
    fc.constant({
      what: 'chunked body',
      apply: (r: FuzzRequest) => ({ ...r, chunked: true, body: r.body ?? Buffer.from(randomish(10_000)) }),
    }),
    fc.constant({
      what: 'invalid UTF-8 body bytes',
      apply: (r: FuzzRequest) => ({
        ...r,
        body: Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from('"}')]),
      }),
    }),
  );
  return fc.tuple(validishRequest(op, hints), variants).map(([r, v]) => {
    const out = v.apply({ ...r, transport: 'raw' });
    return { ...out, label: `raw: ${v.what}` };
  });
}

function randomish(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export interface RequestOptions {
  /** Whether raw (socket) cases may be generated: a listening server is there. */
  raw: boolean;
}

/** Every kind of request for one operation. Streaming operations are sent over the socket only. */
export function fuzzRequests(
  op: FuzzOperation,
  hints: FuzzHints,
  options: RequestOptions,
): fc.Arbitrary<FuzzRequest> {
  const kinds: Array<{ weight: number; arbitrary: fc.Arbitrary<FuzzRequest> }> = [
    { weight: 4, arbitrary: validishRequest(op, hints) },
    { weight: 6, arbitrary: mutatedRequest(op, hints) },
    { weight: 2, arbitrary: hostileRequest(op, hints) },
  ];
  if (options.raw) kinds.push({ weight: 1, arbitrary: rawRequest(op, hints) });
  const all = fc.oneof(...kinds);
  return op.streaming ? all.map((r) => ({ ...r, transport: 'raw' as const })) : all;
}
