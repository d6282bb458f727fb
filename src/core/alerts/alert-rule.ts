/**
 * Alert rules as an operator writes them (docs/alerts.md): a document of named rules, each a condition over
 * fleet state with a severity, how long it must hold before it fires (`for`) and how long it must be clear
 * before it resolves (`recover_for`). Checked here, whole, before any rule is used: a file with one bad rule is
 * refused and the rules in force stay as they were.
 */
import { DURATION_LIMITS, parseDuration } from '../duration.js';
import { FleetError } from '../errors.js';
import { parseFilter } from '../filter/index.js';

export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

export const ALERT_KINDS = [
  'offline_share',
  'device_silent',
  'rollout_halted',
  'phase_failure_rate',
  'auth_failures',
  'tuf_expiry',
  'operator_auth_failures',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

interface RuleCommon {
  name: string;
  severity: AlertSeverity;
  /** How long the condition must hold before the alert fires. */
  forMs: number;
  /** How long the condition must be clear before a firing alert resolves (hysteresis against flapping). */
  recoverForMs: number;
  summary: string | null;
}

export type AlertCondition =
  /** The share of offline devices (offline / not decommissioned, in percent) among those matching `filter`. */
  | { kind: 'offline_share'; filter: string | null; abovePct: number }
  /** More than `above` devices matching `filter` not seen for longer than `silentForMs`. */
  | { kind: 'device_silent'; filter: string | null; silentForMs: number; above: number }
  /** One alert per halted rollout. */
  | { kind: 'rollout_halted' }
  /** One alert per running rollout whose current phase fails more than `abovePct` of its finished devices. */
  | { kind: 'phase_failure_rate'; abovePct: number; minFinished: number }
  /** More than `above` refused device authentications (`device.auth_refused` events) within `windowMs`. */
  | { kind: 'auth_failures'; above: number; windowMs: number }
  /**
   * One alert per TUF role: the root expiring within `withinMs`, an online role (targets, snapshot, timestamp)
   * with under a quarter of its lifetime left, i.e. not re-signed when due.
   */
  | { kind: 'tuf_expiry'; withinMs: number }
  /** More than `above` failed operator sign-ins and token uses (from the audit log) within `windowMs`. */
  | { kind: 'operator_auth_failures'; above: number; windowMs: number };

export type AlertRule = RuleCommon & AlertCondition;

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const MAX_RULES = 200;

type Fields = Record<string, unknown>;

function fail(where: string, message: string): never {
  throw new FleetError('VALIDATION', `${where}: ${message}`, { field: where });
}

function onlyKeys(o: Fields, where: string, allowed: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) fail(where, `unknown key "${key}"; expected one of ${allowed.join(', ')}`);
  }
}

function text(o: Fields, key: string, where: string, max = 500): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    fail(`${where}.${key}`, `expected a text of 1 to ${max} characters`);
  }
  return v;
}

function number(
  o: Fields,
  key: string,
  where: string,
  bounds: { min: number; max: number; fallback?: number },
) {
  const v = o[key] ?? bounds.fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < bounds.min || v > bounds.max) {
    fail(`${where}.${key}`, `expected a number from ${bounds.min} to ${bounds.max}`);
  }
  return v;
}

function duration(o: Fields, key: string, where: string, fallback?: string): number {
  const v = o[key] ?? fallback;
  if (typeof v !== 'string') fail(`${where}.${key}`, 'expected a duration such as 90s, 10m or 2h');
  return parseDuration(v, `${where}.${key}`, DURATION_LIMITS.wait);
}

function filterText(o: Fields, where: string): string | null {
  const filter = text(o, 'filter', where, 2_000);
  if (filter !== null) {
    try {
      parseFilter(filter);
    } catch (error) {
      fail(`${where}.filter`, error instanceof Error ? error.message : String(error));
    }
  }
  return filter;
}

const COMMON_KEYS = ['name', 'kind', 'severity', 'for', 'recover_for', 'summary'];
const KIND_KEYS: Record<AlertKind, readonly string[]> = {
  offline_share: ['filter', 'above_pct'],
  device_silent: ['filter', 'silent_for', 'above'],
  rollout_halted: [],
  phase_failure_rate: ['above_pct', 'min_finished'],
  auth_failures: ['above', 'window'],
  tuf_expiry: ['within'],
  operator_auth_failures: ['above', 'window'],
};

function condition(kind: AlertKind, o: Fields, where: string): AlertCondition {
  switch (kind) {
    case 'offline_share':
      return {
        kind,
        filter: filterText(o, where),
        abovePct: number(o, 'above_pct', where, { min: 0, max: 100 }),
      };
    case 'device_silent':
      return {
        kind,
        filter: filterText(o, where),
        silentForMs: duration(o, 'silent_for', where),
        above: number(o, 'above', where, { min: 0, max: 1e9, fallback: 0 }),
      };
    case 'rollout_halted':
      return { kind };
    case 'phase_failure_rate':
      return {
        kind,
        abovePct: number(o, 'above_pct', where, { min: 0, max: 100 }),
        minFinished: number(o, 'min_finished', where, { min: 1, max: 1e9, fallback: 1 }),
      };
    case 'auth_failures':
      return {
        kind,
        above: number(o, 'above', where, { min: 0, max: 1e6 }),
        windowMs: duration(o, 'window', where, '5m'),
      };
    case 'tuf_expiry':
      return { kind, withinMs: duration(o, 'within', where, '30d') };
    case 'operator_auth_failures':
      return {
        kind,
        above: number(o, 'above', where, { min: 0, max: 1e6 }),
        windowMs: duration(o, 'window', where, '5m'),
      };
  }
}

function rule(value: unknown, where: string): AlertRule {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, 'expected a mapping');
  const o = value as Fields;
  const kind = o.kind;
  if (typeof kind !== 'string' || !(ALERT_KINDS as readonly string[]).includes(kind)) {
    fail(`${where}.kind`, `expected one of ${ALERT_KINDS.join(', ')}`);
  }
  onlyKeys(o, where, [...COMMON_KEYS, ...KIND_KEYS[kind as AlertKind]]);
  const name = o.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    fail(`${where}.name`, 'expected a name of lowercase letters, digits, "_", "." or "-" (up to 64)');
  }
  const severity = o.severity ?? 'warning';
  if (typeof severity !== 'string' || !(ALERT_SEVERITIES as readonly string[]).includes(severity)) {
    fail(`${where}.severity`, `expected one of ${ALERT_SEVERITIES.join(', ')}`);
  }
  return {
    name,
    severity: severity as AlertSeverity,
    forMs: duration(o, 'for', where, '0s'),
    recoverForMs: duration(o, 'recover_for', where, '0s'),
    summary: text(o, 'summary', where),
    ...condition(kind as AlertKind, o, where),
  };
}

/** Checks a parsed rule document (`{ rules: [...] }`); throws VALIDATION naming the first bad field. */
export function parseAlertRules(document: unknown): AlertRule[] {
  if (document === null || document === undefined) return [];
  if (typeof document !== 'object' || Array.isArray(document))
    fail('rules file', 'expected a mapping with "rules"');
  onlyKeys(document as Fields, 'rules file', ['rules']);
  const list = (document as Fields).rules ?? [];
  if (!Array.isArray(list)) fail('rules', 'expected a list of rules');
  if (list.length > MAX_RULES) fail('rules', `at most ${MAX_RULES} rules`);
  const rules = list.map((r, i) => rule(r, `rules[${i}]`));
  const seen = new Set<string>();
  for (const [i, r] of rules.entries()) {
    if (seen.has(r.name)) fail(`rules[${i}].name`, `"${r.name}" names two rules`);
    seen.add(r.name);
  }
  return rules;
}
