/**
 * The scenario file of `fleetd sim run` (docs/simulator.md): a fleet, rollouts, operator actions and faults
 * over a stretch of virtual time. Parsed whole before anything runs; an error names its field, as the
 * rollout spec's do (`fleet[1].timezones.Mars/Base: not an IANA time zone`). Rollout specs are the engine's
 * own schema, checked by parseRolloutSpec.
 */
import { parse as parseYaml } from 'yaml';
import { isValidTimeZone } from '../core/device.js';
import { FleetError, isFleetError } from '../core/errors.js';
import { parseRolloutSpec, type RolloutSpec } from '../core/rollout/spec.js';
import { parseVersion } from '../core/semver.js';
import { type CustomWindow, PROFILE_NAMES, type ProfileSpec } from './profiles.js';

export type Distribution =
  | { kind: 'fixed'; value: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'normal'; mean: number; stddev: number }
  | { kind: 'lognormal'; median: number; sigma: number };

export interface FailureRate {
  default: number;
  hardware: Record<string, number>;
  /** By `name@version`. */
  release: Record<string, number>;
}

export interface FleetGroup {
  name: string;
  count: number;
  idPrefix: string;
  profile: ProfileSpec;
  hardwareType: string;
  firmware: Array<[string, number]>;
  timezones: Array<[string, number]>;
  tags: Array<[string, Array<[string, number]>]>;
  installSeconds: Distribution;
  failureRate: FailureRate;
  /**
   * A release that installs fine and then breaks the device: after a successful update, this share of the
   * group's devices stops heartbeating for good at a uniformly drawn instant within `withinMs`. Null: none.
   */
  darkAfterUpdate: { share: number; withinMs: number } | null;
}

export interface ScenarioRollout {
  at: number;
  /** The spec as written (sent to the API as is). */
  body: Record<string, unknown>;
  spec: RolloutSpec;
  /** Hardware types the made-up release is for (default: every type in the fleet). */
  releaseHardware: string[] | null;
}

export const ACTIONS = ['pause', 'resume', 'approve', 'promote', 'cancel', 'rollback'] as const;
export type ActionName = (typeof ACTIONS)[number];

export interface ScenarioAction {
  at: number;
  rollout: string;
  action: ActionName;
}

export type Fault =
  | { at: number; kind: 'network_drop'; share: number; durationMs: number }
  | { at: number; kind: 'server_restart' };

export interface Scenario {
  name: string;
  start: number;
  durationMs: number;
  seed: number;
  fleet: FleetGroup[];
  rollouts: ScenarioRollout[];
  actions: ScenarioAction[];
  faults: Fault[];
  simulation: {
    /** Longest the engine goes without a pass while something happens (virtual time). */
    engineEveryMs: number;
    /** How often every online device's heartbeat is brought up to date (null: only when read; auto: by size). */
    syncEveryMs: number | null | 'auto';
    /** Device events within one step reach the server together (0: each at its own instant). */
    stepMs: number;
    /** Where the simulated devices enter the server: the store functions the routes call, or HTTP (inject). */
    layer: 'store' | 'http';
    /** How often the ETA of each running rollout is recorded besides at phase starts (default hourly; null: never). */
    etaEveryMs?: number | null;
  };
}

type Obj = Record<string, unknown>;

const fail = (field: string, message: string): never => {
  throw new FleetError('VALIDATION', `${field}: ${message}`, { field });
};

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function obj(v: unknown, field: string): Obj {
  return isObj(v) ? v : fail(field, 'must be a mapping');
}

function known(o: Obj, field: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k))
      fail(field ? `${field}.${k}` : k, `is not a known field (known: ${keys.join(', ')})`);
  }
}

function str(v: unknown, field: string): string {
  return typeof v === 'string' && v.length > 0 ? v : fail(field, 'must be a non-empty string');
}

function num(
  v: unknown,
  field: string,
  min = Number.NEGATIVE_INFINITY,
  max = Number.POSITIVE_INFINITY,
): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return fail(field, 'must be a number');
  if (v < min || v > max) fail(field, `must be between ${min} and ${max} (found ${v})`);
  return v;
}

const UNITS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

export function durationMs(v: unknown, field: string): number {
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(v) : null;
  if (!m) return fail(field, 'must be a duration such as 90s, 10m, 24h, 7d');
  return Math.round(Number(m[1]) * UNITS[m[2] as keyof typeof UNITS]);
}

function instant(v: unknown, field: string): number {
  const text = v instanceof Date ? v.toISOString() : v;
  if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    return fail(field, 'must be an ISO-8601 instant with a zone, e.g. 2026-03-02T00:00:00Z');
  }
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? fail(field, `"${text}" is not a valid date and time`) : ms;
}

/** `at`: an offset from the start (2h) or an instant. */
function at(v: unknown, field: string, s: { start: number; durationMs: number }): number {
  const ms =
    typeof v === 'string' && /^\d/.test(v) && !v.includes('T')
      ? s.start + durationMs(v, field)
      : instant(v, field);
  if (ms < s.start || ms > s.start + s.durationMs) {
    fail(field, 'must fall within the scenario (between start and start + duration)');
  }
  return ms;
}

function shares(
  v: unknown,
  field: string,
  check: (key: string, field: string) => void,
): Array<[string, number]> {
  const o = obj(v, field);
  const entries = Object.entries(o).map(([k, share]): [string, number] => {
    check(k, `${field}.${k}`);
    return [k, num(share, `${field}.${k}`, 0)];
  });
  if (entries.length === 0) fail(field, 'must name at least one value');
  if (entries.reduce((a, [, w]) => a + w, 0) <= 0) fail(field, 'shares must add up to more than 0');
  return entries;
}

function distribution(v: unknown, field: string): Distribution {
  if (typeof v === 'number') return { kind: 'fixed', value: num(v, field, 1) };
  const o = obj(v, field);
  const keys = Object.keys(o);
  if (keys.length !== 1) fail(field, 'must be seconds, or one of uniform, normal, lognormal');
  const k = keys[0]!;
  if (k === 'uniform') {
    const r = o.uniform;
    if (!Array.isArray(r) || r.length !== 2) fail(`${field}.uniform`, 'must be [min, max] in seconds');
    const [min, max] = [
      num((r as unknown[])[0], `${field}.uniform[0]`, 1),
      num((r as unknown[])[1], `${field}.uniform[1]`, 1),
    ];
    if (max < min) fail(`${field}.uniform[1]`, `must not be below the minimum (${min})`);
    return { kind: 'uniform', min, max };
  }
  if (k === 'normal') {
    const n = obj(o.normal, `${field}.normal`);
    known(n, `${field}.normal`, ['mean', 'stddev']);
    return {
      kind: 'normal',
      mean: num(n.mean, `${field}.normal.mean`, 1),
      stddev: num(n.stddev, `${field}.normal.stddev`, 0),
    };
  }
  if (k === 'lognormal') {
    const n = obj(o.lognormal, `${field}.lognormal`);
    known(n, `${field}.lognormal`, ['median', 'sigma']);
    return {
      kind: 'lognormal',
      median: num(n.median, `${field}.lognormal.median`, 1),
      sigma: num(n.sigma, `${field}.lognormal.sigma`, 0, 5),
    };
  }
  return fail(`${field}.${k}`, 'is not a known distribution (uniform, normal, lognormal)');
}

function failureRate(v: unknown, field: string): FailureRate {
  if (v === undefined) return { default: 0, hardware: {}, release: {} };
  if (typeof v === 'number') return { default: num(v, field, 0, 1), hardware: {}, release: {} };
  const o = obj(v, field);
  known(o, field, ['default', 'hardware', 'release']);
  const map = (m: unknown, f: string) =>
    Object.fromEntries(
      Object.entries(m === undefined ? {} : obj(m, f)).map(([k, r]) => [k, num(r, `${f}.${k}`, 0, 1)]),
    );
  return {
    default: o.default === undefined ? 0 : num(o.default, `${field}.default`, 0, 1),
    hardware: map(o.hardware, `${field}.hardware`),
    release: map(o.release, `${field}.release`),
  };
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const minutes = (v: unknown, field: string) => {
  const m = typeof v === 'string' ? /^([01]\d|2[0-3]):([0-5]\d)$/.exec(v) : null;
  return m ? Number(m[1]) * 60 + Number(m[2]) : fail(field, 'must be a local time HH:MM such as 08:00');
};

function profile(v: unknown, field: string): ProfileSpec {
  if (typeof v === 'string') {
    if (v === 'custom') fail(field, 'a custom profile is a mapping with a schedule');
    if (!(PROFILE_NAMES as readonly string[]).includes(v))
      fail(field, `must be one of ${PROFILE_NAMES.join(', ')}`);
    return { kind: v as Exclude<ProfileSpec['kind'], 'custom'> };
  }
  const o = obj(v, field);
  known(o, field, ['schedule', 'jitter', 'heartbeat']);
  if (!Array.isArray(o.schedule) || o.schedule.length === 0)
    fail(`${field}.schedule`, 'must list at least one on/off window');
  const windows = (o.schedule as unknown[]).map((w, i): CustomWindow => {
    const f = `${field}.schedule[${i}]`;
    const x = obj(w, f);
    known(x, f, ['days', 'on', 'off']);
    const days =
      x.days === undefined
        ? [0, 1, 2, 3, 4, 5, 6]
        : (Array.isArray(x.days) ? x.days : fail(`${f}.days`, 'must be a list such as [mon, tue]')).map(
            (d, j) => {
              const n = WEEKDAYS.indexOf(String(d));
              return n >= 0 ? n : fail(`${f}.days[${j}]`, `must be one of ${WEEKDAYS.join(', ')}`);
            },
          );
    const on = minutes(x.on, `${f}.on`);
    const off = minutes(x.off, `${f}.off`);
    if (on === off) fail(`${f}.off`, 'must differ from on');
    return { days, on, off };
  });
  return {
    kind: 'custom',
    windows,
    jitterMin: o.jitter === undefined ? 0 : durationMs(o.jitter, `${field}.jitter`) / 60_000,
    heartbeatMs: o.heartbeat === undefined ? 300_000 : durationMs(o.heartbeat, `${field}.heartbeat`),
  };
}

const GROUP_KEYS = [
  'name',
  'count',
  'id_prefix',
  'profile',
  'hardware_type',
  'firmware',
  'timezones',
  'tags',
  'install_seconds',
  'failure_rate',
  'dark_after_update',
];

function group(v: unknown, i: number): FleetGroup {
  const field = `fleet[${i}]`;
  const o = obj(v, field);
  known(o, field, GROUP_KEYS);
  const count = num(o.count, `${field}.count`, 1, 10_000_000);
  if (!Number.isInteger(count)) fail(`${field}.count`, 'must be a whole number');
  const idPrefix = str(o.id_prefix, `${field}.id_prefix`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,100}$/.test(idPrefix)) {
    fail(`${field}.id_prefix`, 'may hold letters, digits and . _ : - (and start with a letter or digit)');
  }
  return {
    name: o.name === undefined ? idPrefix : str(o.name, `${field}.name`),
    count,
    idPrefix,
    profile: profile(o.profile ?? 'always', `${field}.profile`),
    hardwareType: str(o.hardware_type, `${field}.hardware_type`),
    firmware: shares(o.firmware, `${field}.firmware`, (k, f) => {
      if (!parseVersion(k)) fail(f, `"${k}" is not a semantic version such as 1.2.3`);
    }),
    timezones: shares(o.timezones ?? { UTC: 1 }, `${field}.timezones`, (k, f) => {
      if (!isValidTimeZone(k)) fail(f, `"${k}" is not an IANA time zone (e.g. America/New_York)`);
    }),
    tags: Object.entries(o.tags === undefined ? {} : obj(o.tags, `${field}.tags`)).map(([key, values]) => {
      if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(key)) fail(`${field}.tags.${key}`, 'is not a valid tag key');
      return [key, shares(values, `${field}.tags.${key}`, () => undefined)];
    }),
    installSeconds: distribution(o.install_seconds ?? 900, `${field}.install_seconds`),
    failureRate: failureRate(o.failure_rate, `${field}.failure_rate`),
    darkAfterUpdate: darkAfterUpdate(o.dark_after_update, `${field}.dark_after_update`),
  };
}

function darkAfterUpdate(v: unknown, field: string): FleetGroup['darkAfterUpdate'] {
  if (v === undefined) return null;
  const o = obj(v, field);
  known(o, field, ['share', 'within']);
  const withinMs = durationMs(o.within, `${field}.within`);
  if (withinMs <= 0) fail(`${field}.within`, 'must be longer than 0');
  return { share: num(o.share, `${field}.share`, 0, 1), withinMs };
}

export function parseScenario(input: unknown, name = 'scenario'): Scenario {
  const o = obj(input, 'scenario');
  known(o, '', ['name', 'start', 'duration', 'seed', 'fleet', 'rollouts', 'actions', 'faults', 'simulation']);
  const start = instant(o.start, 'start');
  const duration = durationMs(o.duration, 'duration');
  if (duration <= 0) fail('duration', 'must be longer than 0');
  const seed = o.seed === undefined ? 0 : num(o.seed, 'seed', 0, 4_294_967_295);
  const window = { start, durationMs: duration };
  if (!Array.isArray(o.fleet) || o.fleet.length === 0)
    fail('fleet', 'must list at least one group of devices');
  const fleet = (o.fleet as unknown[]).map(group);
  const prefixes = new Set<string>();
  fleet.forEach((g, i) => {
    if (prefixes.has(g.idPrefix))
      fail(`fleet[${i}].id_prefix`, `"${g.idPrefix}" is used by an earlier group`);
    prefixes.add(g.idPrefix);
  });

  const names = new Set<string>();
  const rollouts = list(o.rollouts, 'rollouts').map((r, i): ScenarioRollout => {
    const field = `rollouts[${i}]`;
    const x = obj(r, field);
    known(x, field, ['at', 'spec', 'release_hardware']);
    const body = obj(x.spec, `${field}.spec`);
    let spec: RolloutSpec;
    try {
      spec = parseRolloutSpec(body);
    } catch (e) {
      if (!isFleetError(e)) throw e;
      return fail(
        `${field}.spec.${String(e.details?.field ?? '')}`.replace(/\.$/, ''),
        e.message.replace(/^[^:]*: /, ''),
      );
    }
    if (names.has(spec.name)) fail(`${field}.spec.name`, `"${spec.name}" is used by an earlier rollout`);
    names.add(spec.name);
    const hw = x.release_hardware;
    return {
      at: at(x.at ?? '0s', `${field}.at`, window),
      body,
      spec,
      releaseHardware:
        hw === undefined
          ? null
          : (Array.isArray(hw)
              ? hw
              : fail(`${field}.release_hardware`, 'must be a list of hardware types')
            ).map((h, j) => str(h, `${field}.release_hardware[${j}]`)),
    };
  });

  const actions = list(o.actions, 'actions').map((a, i): ScenarioAction => {
    const field = `actions[${i}]`;
    const x = obj(a, field);
    known(x, field, ['at', 'rollout', 'action']);
    const rollout = str(x.rollout, `${field}.rollout`);
    if (!names.has(rollout))
      fail(`${field}.rollout`, `"${rollout}" is not the name of a rollout of this scenario`);
    const action = str(x.action, `${field}.action`);
    if (!(ACTIONS as readonly string[]).includes(action))
      fail(`${field}.action`, `must be one of ${ACTIONS.join(', ')}`);
    return { at: at(x.at, `${field}.at`, window), rollout, action: action as ActionName };
  });

  const faults = list(o.faults, 'faults').map((f, i): Fault => {
    const field = `faults[${i}]`;
    const x = obj(f, field);
    const kind = str(x.kind, `${field}.kind`);
    if (kind === 'server_restart') {
      known(x, field, ['at', 'kind']);
      return { at: at(x.at, `${field}.at`, window), kind };
    }
    if (kind === 'network_drop') {
      known(x, field, ['at', 'kind', 'share', 'duration']);
      return {
        at: at(x.at, `${field}.at`, window),
        kind,
        share: x.share === undefined ? 1 : num(x.share, `${field}.share`, 0, 1),
        durationMs: durationMs(x.duration ?? '15m', `${field}.duration`),
      };
    }
    return fail(`${field}.kind`, 'must be one of network_drop, server_restart');
  });

  const sim = o.simulation === undefined ? {} : obj(o.simulation, 'simulation');
  known(sim, 'simulation', ['engine_every', 'sync_every', 'step', 'layer', 'eta_every']);
  const layer = sim.layer ?? 'store';
  if (layer !== 'store' && layer !== 'http') fail('simulation.layer', 'must be store or http');
  return {
    name: o.name === undefined ? name : str(o.name, 'name'),
    start,
    durationMs: duration,
    seed,
    fleet,
    rollouts: rollouts.sort((a, b) => a.at - b.at),
    actions: actions.sort((a, b) => a.at - b.at),
    faults: faults.sort((a, b) => a.at - b.at),
    simulation: {
      engineEveryMs: positive(
        durationMs(sim.engine_every ?? '5m', 'simulation.engine_every'),
        'simulation.engine_every',
      ),
      syncEveryMs:
        sim.sync_every === undefined || sim.sync_every === 'auto'
          ? 'auto'
          : sim.sync_every === 'never'
            ? null
            : positive(durationMs(sim.sync_every, 'simulation.sync_every'), 'simulation.sync_every'),
      stepMs: sim.step === undefined ? 30_000 : durationMs(sim.step, 'simulation.step'),
      layer: layer as 'store' | 'http',
      etaEveryMs:
        sim.eta_every === 'never'
          ? null
          : positive(durationMs(sim.eta_every ?? '1h', 'simulation.eta_every'), 'simulation.eta_every'),
    },
  };
}

function positive(ms: number, field: string): number {
  return ms > 0 ? ms : fail(field, 'must be longer than 0');
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : fail(field, 'must be a list');
}

/** Parses a scenario file's text (YAML or JSON). */
export function parseScenarioText(text: string, name?: string): Scenario {
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    return fail('scenario', `not valid YAML: ${(e as Error).message}`);
  }
  return parseScenario(data, name);
}
