/**
 * The rollout spec: one schema for the YAML/JSON file and the API body. `RolloutSpecSchema` checks the
 * shape (the HTTP API validates its body with it too); `parseRolloutSpec` adds the rules a schema cannot
 * express and returns the normalized spec, every default filled in and durations in ms. Errors are
 * VALIDATION FleetErrors whose message starts with the field, e.g.
 * `phases[1].percentage: must be greater than the previous phase (10)`, and whose details.field is it.
 *
 * Defaults (the normalized RolloutSpec always has them):
 *   phases[i].name "phase <i+1>", wait "0s", success_rate 95, approval auto, quorum 50
 *   window.timezone device (UTC for devices without a zone), window.days every day
 *   window device_defined: no fallback_window (devices without windows of their own are not held), deferral none
 *   max_concurrent 100 (seed 000), a phase's max_concurrent and rate those of the rollout, retry 3 attempts, backoff 1m × 2 per attempt up to 1h,
 *   timeout 2h, offline queue, missed_window next_window, rollback_on_halt true for progressive (seeds
 *   000 and 001: a failed gate means halt and roll back), false otherwise, action forced, end_action stop,
 *   abort.min_finished 10, rate.growth_factor 1, seed derived from name and release (so a dry run picks
 *   the canaries the real run will), overlap newest_wins, priority 0. No defaults for scheduled_at (start now), abort, rate, end_at,
 *   max_concurrent_per.
 * Strategy-specific: progressive needs phases (last at 100%); scheduled needs a window; rolling needs
 * batch_size; switch_at is blue_green's; immediate takes no window; fields of another strategy are refused.
 * Over 500 lines because the schema and its cross-field rules are one contract, read together.
 */
import { type Static, type TSchema, Type } from 'typebox';
import Value from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { MAX_RATE_TEXT, parseByteRate, parseByteSize } from '../byte-rate.js';
import { isValidTimeZone } from '../device.js';
import { DURATION_LIMITS, durationBound, MAX_DURATION_TEXT, parseDuration } from '../duration.js';
import { FleetError, isFleetError } from '../errors.js';
import { GROUP_NAME, parseFilter } from '../filter/index.js';
import { type MeteredBudget, parseMeteredBudget } from '../metered-budget.js';
import { formatVersion, parseVersion } from '../semver.js';
import { findUnstorable } from '../unstorable.js';
import { cronEverMatches, parseCron } from './cron.js';
import type { RatePolicy, RetryPolicy } from './dispatch.js';
import type { HealthPolicy } from './health-gate.js';
import { OVERLAP_POLICIES, type OverlapPolicy } from './overlap.js';
import { type AbortPolicy, DEFAULT_QUORUM, type Phase } from './phases.js';
import { seedFromText } from './random.js';
import { type MaintenanceWindow, WEEKDAYS } from './window.js';

export const STRATEGIES = [
  'immediate',
  'scheduled',
  'progressive',
  'on_connect',
  'rolling',
  'blue_green',
] as const;
export type Strategy = (typeof STRATEGIES)[number];

const DURATION = '^\\d+(\\.\\d+)?(ms|s|m|h|d|w)$';
const LOCAL_TIME = '^([01]\\d|2[0-3]):[0-5]\\d$';
const INSTANT = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$';
const PATTERN_HINTS: Record<string, string> = {
  [DURATION]: 'must be a duration such as 90s, 10m, 24h, 7d',
  [LOCAL_TIME]: 'must be a local time HH:MM such as 02:00',
  [INSTANT]: 'must be an ISO-8601 instant with a zone, e.g. 2024-10-21T02:00:00Z',
};
const Duration = (description: string, maxMs: number) =>
  Type.String({
    pattern: DURATION,
    maxLength: MAX_DURATION_TEXT,
    description: `${description}, e.g. 90s, 10m, 24h, 7d; at most ${durationBound(maxMs)}`,
  });
const LocalTime = (description: string) =>
  Type.String({ pattern: LOCAL_TIME, maxLength: 5, description: `${description} (local HH:MM)` });
const Instant = (description: string) =>
  Type.String({ pattern: INSTANT, maxLength: 40, description: `${description} (ISO-8601 with a zone)` });
/** Counts of devices and rates: far above any fleet, far below any integer column. */
const Count = (description: string) => Type.Integer({ minimum: 1, maximum: MAX_COUNT, description });
const Percent = (description: string) => Type.Number({ exclusiveMinimum: 0, maximum: 100, description });
const strict = { additionalProperties: false } as const;
const MAX_COUNT = 1_000_000;
const MAX_PHASES = 20;
/** A window of one day: a cron's duration is checked to be under 24h by normalizeWindow. */
const WINDOW_MAX_MS = 86_400_000;

const RateSchema = Type.Object(
  {
    per_minute: Count('Devices offered per minute at first'),
    growth_factor: Type.Optional(Type.Number({ minimum: 1, maximum: 100, description: 'Default 1' })),
    after_successes: Type.Optional(Count('Successes between two growth steps')),
    max_per_minute: Type.Optional(Count('The rate never grows past this')),
  },
  {
    ...strict,
    description: 'Devices offered per minute, × growth_factor after every after_successes successes',
  },
);
const MaxConcurrent = (description: string) => Type.Integer({ minimum: 1, maximum: MAX_COUNT, description });

const PhaseSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Default "phase N"' })),
    percentage: Percent('Cumulative share of the targets reached by the end of this phase'),
    wait: Type.Optional(
      Duration('Soak time from the phase start before its gate is judged (default 0s)', DURATION_LIMITS.wait),
    ),
    success_rate: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description: 'Percent of finished devices that must succeed (default 95)',
      }),
    ),
    approval: Type.Optional(
      Type.Enum(['manual', 'auto'], { description: 'manual: wait for an operator before the next phase' }),
    ),
    quorum: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        description: 'Percent of the phase that must finish before judging (default 50)',
      }),
    ),
    max_concurrent: Type.Optional(MaxConcurrent("While this phase is current (default the rollout's)")),
    rate: Type.Optional(RateSchema),
    health: Type.Optional(
      Type.Object(
        {
          soak: Duration('Each updated device is watched this long after its update', DURATION_LIMITS.wait),
          dark_after: Type.Optional(
            Duration(
              "Silent this long after updating = went dark (default: each device's offline threshold, its connectivity class's or the server's)",
              DURATION_LIMITS.wait,
            ),
          ),
          max_reboots: Type.Optional(
            Type.Integer({ minimum: 0, maximum: MAX_COUNT, description: 'Since the update' }),
          ),
          max_app_crashes: Type.Optional(
            Type.Integer({ minimum: 0, maximum: MAX_COUNT, description: 'Since the update' }),
          ),
          crash_rate_margin: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 100,
              description:
                'Percentage points the updated devices may crash more often than those not yet updated',
            }),
          ),
        },
        { ...strict, description: 'The health gate (docs/health-gates.md)' },
      ),
    ),
  },
  strict,
);

export const WindowSchema = Type.Object(
  {
    start: Type.Optional(LocalTime('Opening time')),
    end: Type.Optional(LocalTime('Closing time; before start means the next day')),
    days: Type.Optional(
      // Distinct days are checked by normalizeWindow in one pass: TypeBox's uniqueItems compares every pair
      // (a 20,000-item list took 11 s) even when maxItems has already failed.
      Type.Array(Type.Enum([...WEEKDAYS]), {
        minItems: 1,
        maxItems: WEEKDAYS.length,
        description: 'Opening days, each at most once (default all)',
      }),
    ),
    cron: Type.Optional(
      Type.String({ maxLength: 100, description: 'Instead of start and days: "minute hour dom month dow"' }),
    ),
    duration: Type.Optional(
      Duration('With cron: how long the window stays open (whole minutes, under 24h)', WINDOW_MAX_MS),
    ),
    timezone: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: '"device" (default) or an IANA zone' }),
    ),
  },
  strict,
);

export type WindowInput = Static<typeof WindowSchema>;
/** `window: device_defined`: each device's own windows (docs/rollouts.md), `fallback_window` for the others. */
export const DEVICE_DEFINED = 'device_defined';
/** Deferrals a device may make of a soft update: at most `max_count`, none reaching past `max_total` after the first. */
const DeferralSchema = Type.Object(
  {
    max_count: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, description: 'Deferrals a device may make of the update' }),
    ),
    max_total: Type.Optional(
      Duration('How long after its first deferral the update is forced at the latest', DURATION_LIMITS.wait),
    ),
  },
  { ...strict, description: 'soft only: the budget within which a device may defer the update' },
);

export const RolloutSpecSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^\\S(.*\\S)?$' }),
    release: Type.String({ minLength: 3, maxLength: 256, description: 'name@version' }),
    filter: Type.Optional(
      Type.String({
        maxLength: 4096,
        description:
          'Target devices in the filter language; "" = the whole fleet. Required unless group is given',
      }),
    ),
    group: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          'Target the devices of this group (docs/groups.md), and-ed with filter when both are given',
      }),
    ),
    strategy: Type.Enum([...STRATEGIES]),
    phases: Type.Optional(
      Type.Array(PhaseSchema, { minItems: 1, maxItems: MAX_PHASES, description: 'progressive only' }),
    ),
    window: Type.Optional(
      Type.Union([WindowSchema, Type.Literal(DEVICE_DEFINED)], {
        description:
          'A window, or "device_defined": each device\'s own windows, fallback_window for the others',
      }),
    ),
    fallback_window: Type.Optional(WindowSchema),
    deferral: Type.Optional(DeferralSchema),
    scheduled_at: Type.Optional(Instant('Nothing starts before this')),
    max_concurrent: Type.Optional(MaxConcurrent('Default 100')),
    max_concurrent_per: Type.Optional(
      Type.Object(
        {
          tag: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', maxLength: 64 }),
          limit: Count('Devices at once per tag value'),
        },
        { ...strict, description: 'At most `limit` devices per value of tag `tag`, e.g. 50 per region' },
      ),
    ),
    batch_size: Type.Optional(Count('rolling only')),
    rate: Type.Optional(RateSchema),
    retry: Type.Optional(
      Type.Object(
        {
          attempts: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 100, description: 'Tries in total (default 3)' }),
          ),
          backoff: Type.Optional(Duration('First backoff (default 1m)', DURATION_LIMITS.backoff)),
          factor: Type.Optional(Type.Number({ minimum: 1, maximum: 10, description: 'Default 2' })),
          max_backoff: Type.Optional(Duration('Default 1h', DURATION_LIMITS.backoff)),
        },
        strict,
      ),
    ),
    timeout: Type.Optional(
      Duration('An update in progress this long fails (default 2h)', DURATION_LIMITS.timeout),
    ),
    abort: Type.Optional(
      Type.Object(
        {
          failure_rate: Percent('Halt once this percent of finished updates failed'),
          min_finished: Type.Optional(Count('Default 10')),
        },
        strict,
      ),
    ),
    end_at: Type.Optional(Instant('From then on the update is offered to no further device')),
    end_action: Type.Optional(
      Type.Enum(['stop', 'cancel'], {
        description: 'At end_at: stop offering and let started updates finish (default), or cancel',
      }),
    ),
    offline: Type.Optional(
      Type.Enum(['queue', 'skip'], { description: 'Default queue (update on connect)' }),
    ),
    missed_window: Type.Optional(
      Type.Enum(['next_window', 'on_connect'], { description: 'Default next_window' }),
    ),
    rollback_on_halt: Type.Optional(
      Type.Boolean({
        description: 'Default true for progressive (a failed gate halts and rolls back), else false',
      }),
    ),
    action: Type.Optional(Type.Enum(['forced', 'soft', 'download_only'], { description: 'Default forced' })),
    switch_at: Type.Optional(Percent('blue_green: switch by itself once this share has staged')),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4_294_967_295, description: 'Canary choice' })),
    overlap: Type.Optional(
      Type.Enum([...OVERLAP_POLICIES], {
        description:
          'A target waiting in another open rollout: newest_wins (default) takes it, priority takes it from a lower priority only, refuse creates nothing',
      }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: -1_000_000,
        maximum: 1_000_000,
        description: 'For overlap: priority (default 0)',
      }),
    ),
    download_rate_limit: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_RATE_TEXT,
        description:
          "Each device's download at most this fast, e.g. 100kB/s, 2MB/s, 512KiB/s (a device's download_rate_limit tag wins)",
      }),
    ),
    allow_metered: Type.Optional(
      Type.Union([Type.Boolean(), Type.String({ minLength: 1, maxLength: MAX_RATE_TEXT })], {
        description:
          'Devices on a metered link: false (default) holds their downloads, true lets them, a size such as 20MB lets releases up to it',
      }),
    ),
    adopt_tuf: Type.Optional(
      Type.Boolean({
        description:
          'Devices that check the pinned key alone adopt the TUF root signed for migration (`fleetd keys migrate`) and verify this release and all later ones with TUF',
      }),
    ),
    metered_budget: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_RATE_TEXT,
        description:
          'Bytes a device on a metered link may be sent per rolling period, e.g. 50MB/30d; a download that would overrun it waits for an unmetered link',
      }),
    ),
  },
  { ...strict, description: 'A rollout: a release, the devices it targets, a strategy and its policy' },
);
export type RolloutSpecInput = Static<typeof RolloutSpecSchema>;

export interface RolloutSpec {
  name: string;
  /** `name@version`, version canonical (no leading v). */
  release: string;
  releaseName: string;
  releaseVersion: string;
  filter: string;
  strategy: Strategy;
  /** progressive only; [] otherwise. */
  phases: Phase[];
  /** With `deviceWindows`, the fallback window (null: devices without windows of their own are not held). */
  window: MaintenanceWindow | null;
  /** `window: device_defined`: a device's own windows replace `window` for it. */
  deviceWindows: boolean;
  deferral: DeferralPolicy | null;
  scheduledAt: number | null;
  maxConcurrent: number;
  maxConcurrentPer: { tag: string; limit: number } | null;
  batchSize: number | null;
  rate: RatePolicy | null;
  retry: RetryPolicy;
  timeoutMs: number;
  abort: AbortPolicy | null;
  endAt: number | null;
  endAction: 'stop' | 'cancel';
  offline: 'queue' | 'skip';
  missedWindow: 'next_window' | 'on_connect';
  rollbackOnHalt: boolean;
  action: 'forced' | 'soft' | 'download_only';
  switchAt: number | null;
  seed: number;
  overlap: OverlapPolicy;
  priority: number;
  /** Bytes per second for each device's download; null = unlimited (docs/bandwidth.md). */
  downloadRateLimit: number | null;
  /** On a metered link: hold every download (false), none (true), or those of releases above this many bytes. */
  allowMetered: boolean | number;
  /** Devices without TUF adopt the root signed for migration with this update (docs/signing.md). */
  adoptTuf: boolean;
  /** On a metered link: the bytes a device may be granted per rolling period (docs/bandwidth.md); null = none. */
  meteredBudget: MeteredBudget | null;
}

export interface DeferralPolicy {
  maxCount: number | null;
  maxTotalMs: number | null;
}

const fail = (field: string, message: string, extra: Record<string, unknown> = {}): never => {
  throw new FleetError('VALIDATION', `${field}: ${message}`, { field, ...extra });
};

/** `/phases/1/percentage` → `phases[1].percentage` */
/** `phases` + `1` → `phases[1]`, `window` + `start` → `window.start`; an odd key is quoted: `window[" "]`. */
const child = (at: string, key: string) =>
  /^\d+$/.test(key)
    ? `${at}[${key}]`
    : !/^[A-Za-z_]\w*$/.test(key)
      ? `${at}[${JSON.stringify(key)}]`
      : at
        ? `${at}.${key}`
        : key;
const fieldOf = (pointer: string, base = '') =>
  pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce(child, base);

/**
 * The arrays' lengths before the schema: Value.Errors reports every bad item of an array however long it is
 * (145,000 items fit a 1 MB body), so a list far too long is refused without looking at its items.
 */
function checkLengths(input: Record<string, unknown>): void {
  for (const field of ['window', 'fallback_window']) {
    const days = (input[field] as { days?: unknown } | undefined)?.days;
    if (Array.isArray(days) && days.length > WEEKDAYS.length) {
      fail(`${field}.days`, `must have at most ${WEEKDAYS.length} items (found ${days.length})`);
    }
  }
  // A union's schema error says only "must match a schema in anyOf": say what is expected instead.
  const metered = input.allow_metered;
  if (metered !== undefined && typeof metered !== 'boolean' && typeof metered !== 'string') {
    fail('allow_metered', 'must be true, false or a size such as 20MB');
  }
  const phases = input.phases;
  if (Array.isArray(phases) && phases.length > MAX_PHASES) {
    fail('phases', `must have at most ${MAX_PHASES} items (found ${phases.length})`);
  }
}

/** The schema the input is checked with: `window` as an object, "device_defined" having been taken out. */
const CheckedSchema = Type.Object(
  { ...RolloutSpecSchema.properties, window: Type.Optional(WindowSchema) },
  { ...strict },
);

function schemaError(input: Record<string, unknown>): void {
  if (typeof input.window === 'string' && input.window !== DEVICE_DEFINED) {
    fail('window', `must be a window (start, end, …) or "${DEVICE_DEFINED}"`);
  }
  const { window, ...rest } = input;
  checkSchema(CheckedSchema, window === DEVICE_DEFINED ? rest : input);
}

/** Fails with the first error of `input` against `schema`, naming its field under `base` (e.g. `windows`). */
export function checkSchema(schema: TSchema, input: unknown, base = ''): void {
  const errors = Value.Errors(schema, input).filter((e) => e.keyword !== 'boolean');
  const e = errors[0];
  if (!e) return;
  const at = fieldOf(e.instancePath, base);
  const join = (key: string) => child(at, key);
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required') fail(join(String((params.requiredProperties as string[])[0])), 'is required');
  if (e.keyword === 'additionalProperties') {
    fail(join(String((params.additionalProperties as string[])[0])), 'is not a known field');
  }
  if (e.keyword === 'enum')
    fail(at || base || 'spec', `must be one of ${(params.allowedValues as string[]).join(', ')}`);
  if (e.keyword === 'pattern') fail(at, PATTERN_HINTS[String(params.pattern)] ?? e.message);
  fail(at || base || 'spec', e.message);
}

/** The schema has checked the form; this enforces the bound the schema states, naming the field. */
const durationMs = (text: string, field: string, maxMs: number) => parseDuration(text, field, maxMs);

/** The longest timeout, backoff and phase wait a spec may give, and whether NUL characters are refused. */
export interface SpecDurationLimits {
  timeout: number;
  backoff: number;
  wait: number;
  refuseUnstorable: boolean;
}
/** What the API, the CLI and spec files accept. */
export const INPUT_LIMITS: SpecDurationLimits = { ...DURATION_LIMITS, refuseUnstorable: true };
/**
 * What a stored spec is read back with: a rollout accepted before these bounds existed (a 45d timeout, or a
 * NUL in its name on SQLite) must still read, or every list of rollouts would fail. Only a safe integer of
 * milliseconds is required.
 */
export const STORED_LIMITS: SpecDurationLimits = {
  timeout: Number.MAX_SAFE_INTEGER,
  backoff: Number.MAX_SAFE_INTEGER,
  wait: Number.MAX_SAFE_INTEGER,
  refuseUnstorable: false,
};
const instant = (text: string, field: string) => {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? fail(field, `"${text}" is not a valid date and time`) : ms;
};
const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

export function parseRolloutSpec(input: unknown, limits: SpecDurationLimits = INPUT_LIMITS): RolloutSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('spec', 'must be an object');
  checkLengths(input as Record<string, unknown>);
  schemaError(input as Record<string, unknown>);
  const unstorable = limits.refuseUnstorable ? findUnstorable(input) : undefined;
  if (unstorable) fail(fieldOf(unstorable.path) || 'spec', unstorable.problem);
  const s = input as RolloutSpecInput;
  const { releaseName, releaseVersion } = checkRelease(s.release);
  const filter = targetFilter(s);
  checkStrategyFields(s);
  const scheduledAt = s.scheduled_at === undefined ? null : instant(s.scheduled_at, 'scheduled_at');
  const endAt = s.end_at === undefined ? null : instant(s.end_at, 'end_at');
  if (endAt !== null && scheduledAt !== null && endAt <= scheduledAt) {
    fail('end_at', `must be after scheduled_at (${s.scheduled_at})`);
  }
  if (s.end_action !== undefined && endAt === null) fail('end_action', 'needs end_at');
  const retry = {
    attempts: s.retry?.attempts ?? 3,
    backoffMs: durationMs(s.retry?.backoff ?? '1m', 'retry.backoff', limits.backoff),
    factor: s.retry?.factor ?? 2,
    maxBackoffMs: durationMs(s.retry?.max_backoff ?? '1h', 'retry.max_backoff', limits.backoff),
  };
  if (retry.maxBackoffMs < retry.backoffMs)
    fail('retry.max_backoff', `must not be shorter than retry.backoff (${s.retry?.backoff ?? '1m'})`);
  const timeoutMs = durationMs(s.timeout ?? '2h', 'timeout', limits.timeout);
  if (timeoutMs <= 0) fail('timeout', 'must be longer than 0');
  return {
    name: s.name,
    release: `${releaseName}@${releaseVersion}`,
    releaseName,
    releaseVersion,
    filter,
    strategy: s.strategy as Strategy,
    phases: s.strategy === 'progressive' ? normalizePhases(s.phases!, limits) : [],
    window: windowOf(s),
    deviceWindows: s.window === DEVICE_DEFINED,
    deferral: s.deferral ? normalizeDeferral(s.deferral, limits) : null,
    scheduledAt,
    maxConcurrent: s.max_concurrent ?? 100,
    maxConcurrentPer: s.max_concurrent_per ?? null,
    batchSize: s.batch_size ?? null,
    rate: s.rate ? normalizeRate(s.rate) : null,
    retry,
    timeoutMs,
    abort: s.abort ? { failureRate: s.abort.failure_rate, minFinished: s.abort.min_finished ?? 10 } : null,
    endAt,
    endAction: (s.end_action ?? 'stop') as RolloutSpec['endAction'],
    offline: (s.offline ?? 'queue') as RolloutSpec['offline'],
    missedWindow: (s.missed_window ?? 'next_window') as RolloutSpec['missedWindow'],
    rollbackOnHalt: s.rollback_on_halt ?? s.strategy === 'progressive',
    action: (s.action ?? 'forced') as RolloutSpec['action'],
    switchAt: s.switch_at ?? null,
    seed: s.seed ?? seedFromText(`${s.name}\n${releaseName}@${releaseVersion}`),
    overlap: (s.overlap ?? 'newest_wins') as OverlapPolicy,
    priority: s.priority ?? 0,
    downloadRateLimit:
      s.download_rate_limit === undefined
        ? null
        : parseByteRate(s.download_rate_limit, 'download_rate_limit'),
    allowMetered:
      typeof s.allow_metered === 'string'
        ? parseByteSize(s.allow_metered, 'allow_metered')
        : (s.allow_metered ?? false),
    adoptTuf: s.adopt_tuf ?? false,
    meteredBudget: meteredBudgetOf(s),
  };
}

/** A budget decides for metered links; `allow_metered` may only add a per-release size ceiling to it. */
function meteredBudgetOf(s: RolloutSpecInput): MeteredBudget | null {
  if (s.metered_budget === undefined) return null;
  if (typeof s.allow_metered === 'boolean') {
    fail(
      'metered_budget',
      `cannot be combined with allow_metered: ${s.allow_metered} (leave allow_metered out, or give it a size to cap each release)`,
    );
  }
  return parseMeteredBudget(s.metered_budget, 'metered_budget');
}

function checkRelease(release: string): { releaseName: string; releaseVersion: string } {
  const at = release.lastIndexOf('@');
  const name = release.slice(0, at);
  if (at <= 0 || name.trim() !== name) fail('release', `"${release}" must be name@version`);
  const version = parseVersion(release.slice(at + 1));
  if (!version) fail('release', `"${release.slice(at + 1)}" is not a semantic version such as 1.2.3`);
  return { releaseName: name, releaseVersion: formatVersion(version!) };
}

/**
 * The spec's devices as one filter: `group: NAME` becomes the term `group = "NAME"`, so the stored spec, the
 * scope check and the engine read one filter whichever way it was written.
 */
function targetFilter(s: RolloutSpecInput): string {
  if (s.group === undefined) {
    if (s.filter === undefined)
      fail('filter', 'is required ("" targets the whole fleet), unless group is given');
    checkFilter(s.filter!);
    return s.filter!;
  }
  if (!GROUP_NAME.test(s.group)) fail('group', `"${s.group}" is not a group name (letters, digits, _ . -)`);
  if (s.filter !== undefined) checkFilter(s.filter); // its own columns in the error
  const term = `group = ${JSON.stringify(s.group)}`;
  return s.filter === undefined || s.filter.trim() === '' ? term : `${term} and (${s.filter})`;
}

function checkFilter(filter: string): void {
  try {
    parseFilter(filter);
  } catch (e) {
    if (!isFleetError(e)) throw e;
    fail('filter', e.message, e.details);
  }
}

const ONLY: Partial<Record<keyof RolloutSpecInput, Strategy>> = {
  phases: 'progressive',
  batch_size: 'rolling',
  switch_at: 'blue_green',
};

function checkStrategyFields(s: RolloutSpecInput): void {
  for (const [field, strategy] of Object.entries(ONLY)) {
    if (s[field as keyof RolloutSpecInput] !== undefined && s.strategy !== strategy) {
      fail(field, `only the ${strategy} strategy takes ${field} (this rollout is ${s.strategy})`);
    }
  }
  if (s.strategy === 'progressive' && !s.phases) fail('phases', 'is required for the progressive strategy');
  if (s.strategy === 'rolling' && s.batch_size === undefined)
    fail('batch_size', 'is required for the rolling strategy');
  if (s.strategy === 'scheduled' && !s.window) fail('window', 'is required for the scheduled strategy');
  if (s.strategy === 'immediate' && s.window) {
    fail(
      'window',
      'the immediate strategy starts online devices now; use scheduled for a maintenance window',
    );
  }
  if (s.strategy === 'blue_green' && s.action === 'download_only') {
    fail('action', 'blue_green stages everywhere and then switches; use forced or soft for the switch');
  }
  if (s.rate) checkRate(s.rate, 'rate');
  if (s.fallback_window !== undefined && s.window !== DEVICE_DEFINED) {
    fail('fallback_window', `is only used with window: ${DEVICE_DEFINED}`);
  }
  if (s.strategy === 'scheduled' && s.window === DEVICE_DEFINED && !s.fallback_window) {
    fail('fallback_window', `is required for the scheduled strategy with window: ${DEVICE_DEFINED}`);
  }
  if (s.deferral !== undefined) {
    if ((s.action ?? 'forced') !== 'soft') {
      fail('deferral', 'only a soft update can be deferred; add action: soft');
    }
    if (s.deferral.max_count === undefined && s.deferral.max_total === undefined) {
      fail('deferral', 'needs max_count, max_total or both (the budget must be bounded)');
    }
  }
}

function windowOf(s: RolloutSpecInput): MaintenanceWindow | null {
  if (s.window === DEVICE_DEFINED) {
    return s.fallback_window ? normalizeWindow(s.fallback_window, 'fallback_window') : null;
  }
  return s.window ? normalizeWindow(s.window) : null;
}

function normalizeDeferral(
  d: NonNullable<RolloutSpecInput['deferral']>,
  limits: SpecDurationLimits,
): DeferralPolicy {
  const maxTotalMs =
    d.max_total === undefined ? null : durationMs(d.max_total, 'deferral.max_total', limits.wait);
  if (maxTotalMs !== null && maxTotalMs <= 0) fail('deferral.max_total', 'must be longer than 0');
  return { maxCount: d.max_count ?? null, maxTotalMs };
}

function checkRate(rate: Static<typeof RateSchema>, field: string): void {
  const { growth_factor = 1, after_successes, max_per_minute, per_minute } = rate;
  if (growth_factor > 1 && after_successes === undefined)
    fail(`${field}.after_successes`, 'is required when growth_factor is above 1');
  if (max_per_minute !== undefined && max_per_minute < per_minute)
    fail(`${field}.max_per_minute`, `must be at least per_minute (${per_minute})`);
}

function normalizePhases(
  phases: NonNullable<RolloutSpecInput['phases']>,
  limits: SpecDurationLimits,
): Phase[] {
  const names = new Set<string>();
  return phases.map((p, i) => {
    const field = `phases[${i}]`;
    const previous = phases[i - 1]?.percentage;
    if (previous !== undefined && p.percentage <= previous) {
      fail(`${field}.percentage`, `must be greater than the previous phase (${previous})`);
    }
    const last = i === phases.length - 1;
    if (last && p.percentage !== 100)
      fail(`${field}.percentage`, `the last phase must reach 100 (found ${p.percentage})`);
    if (last && p.approval === 'manual')
      fail(`${field}.approval`, 'the last phase has no next phase to approve');
    const name = p.name ?? `phase ${i + 1}`;
    if (names.has(name)) fail(`${field}.name`, `"${name}" is used by an earlier phase`);
    names.add(name);
    if (p.rate) checkRate(p.rate, `${field}.rate`);
    return {
      name,
      percentage: p.percentage,
      waitMs: durationMs(p.wait ?? '0s', `${field}.wait`, limits.wait),
      successRate: p.success_rate ?? 95,
      approval: (p.approval ?? 'auto') as Phase['approval'],
      quorum: p.quorum ?? DEFAULT_QUORUM,
      maxConcurrent: p.max_concurrent ?? null,
      rate: p.rate ? normalizeRate(p.rate) : null,
      ...(p.health ? { health: normalizeHealth(p.health, `${field}.health`, limits) } : {}),
    };
  });
}

function normalizeHealth(
  h: NonNullable<NonNullable<RolloutSpecInput['phases']>[number]['health']>,
  field: string,
  limits: SpecDurationLimits,
): HealthPolicy {
  return {
    soakMs: durationMs(h.soak, `${field}.soak`, limits.wait),
    darkAfterMs:
      h.dark_after === undefined ? null : durationMs(h.dark_after, `${field}.dark_after`, limits.wait),
    maxReboots: h.max_reboots ?? null,
    maxAppCrashes: h.max_app_crashes ?? null,
    crashRateMargin: h.crash_rate_margin ?? null,
  };
}

/** A window document in its normalized form; `field` names it in errors (`window`, `windows[0]`…). */
export function normalizeWindow(w: WindowInput, field = 'window'): MaintenanceWindow {
  const timezone = w.timezone ?? 'device';
  if (timezone !== 'device' && !isValidTimeZone(timezone)) {
    fail(`${field}.timezone`, `"${timezone}" is not an IANA time zone (e.g. America/New_York) or "device"`);
  }
  if (w.cron !== undefined) {
    for (const f of ['start', 'end', 'days'] as const) {
      if (w[f] !== undefined)
        fail(`${field}.${f}`, `cannot be combined with ${field}.cron (the cron gives the opening)`);
    }
    if (w.duration === undefined) fail(`${field}.duration`, `is required with ${field}.cron`);
    let cron: ReturnType<typeof parseCron>;
    try {
      cron = parseCron(w.cron);
    } catch (e) {
      return fail(`${field}.cron`, (e as Error).message);
    }
    const minutes = durationMs(w.duration!, `${field}.duration`, WINDOW_MAX_MS) / 60_000;
    if (!Number.isInteger(minutes) || minutes <= 0 || minutes >= 1440) {
      fail(`${field}.duration`, 'must be whole minutes, longer than 0 and shorter than 24h');
    }
    if (!cronEverMatches(cron!)) fail(`${field}.cron`, `"${w.cron}" never matches a date`);
    const start = cron.hour * 60 + cron.minute;
    return { start, end: (start + minutes) % 1440, timezone, days: WEEKDAYS, cron: w.cron.trim() };
  }
  if (w.duration !== undefined)
    fail(`${field}.duration`, `is only used with ${field}.cron; give ${field}.end instead`);
  if (w.start === undefined) fail(`${field}.start`, 'is required');
  if (w.end === undefined) fail(`${field}.end`, 'is required');
  if (w.start === w.end) fail(`${field}.end`, `must differ from ${field}.start (${w.start})`);
  if (w.days && new Set(w.days).size !== w.days.length) fail(`${field}.days`, 'must not repeat a day');
  const days = w.days ? WEEKDAYS.filter((d) => w.days!.includes(d)) : WEEKDAYS;
  return { start: minutesOf(w.start!), end: minutesOf(w.end!), timezone, days, cron: null };
}

function normalizeRate(r: Static<typeof RateSchema>): RatePolicy {
  return {
    perMinute: r.per_minute,
    growthFactor: r.growth_factor ?? 1,
    afterSuccesses: r.after_successes ?? null,
    maxPerMinute: r.max_per_minute ?? null,
  };
}

/** Parses a spec file or body: YAML, JSON, or `auto` (JSON when it starts with `{`, else YAML). */
export function parseRolloutSpecText(text: string, format: 'yaml' | 'json' | 'auto' = 'auto'): RolloutSpec {
  const json = format === 'json' || (format === 'auto' && text.trimStart().startsWith('{'));
  let data: unknown;
  try {
    data = json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new FleetError(
      'VALIDATION',
      `spec: not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
      { field: 'spec' },
      { cause: e },
    );
  }
  return parseRolloutSpec(data);
}
