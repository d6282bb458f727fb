/**
 * Alert rules evaluated against the store (docs/alerts.md). Each evaluation observes every rule
 * (alert-conditions.ts), steps each alert's state (core/alerts/alert-state.ts) with the injected clock, and
 * writes the alerts that fire or resolve as `alert.firing` / `alert.resolved` events, so webhooks and the event
 * stream carry them like any other event.
 *
 * The event log is the truth of which alerts are firing, shared by replicas: an evaluator restores it from the
 * newest alert events on its first evaluation, then follows the alert events written after that (its own and
 * other replicas'), and never writes a `firing` for an alert the log already has firing nor a `resolved` for
 * one it does not — so an alert fires once however many replicas evaluate it. How long a condition has held
 * (`pending`) is kept by each evaluator; a restart begins those anew.
 */
import type { AlertRule, AlertSeverity } from '../core/alerts/alert-rule.js';
import { type AlertPhase, type AlertState, stepAlert } from '../core/alerts/alert-state.js';
import { operatorAuthFailures } from '../core/alerts/operator-auth-failures.js';
import type { Clock } from '../core/clock.js';
import type { StatusThresholds } from '../core/device.js';
import type { NewEvent, Store, StoredEvent } from '../store/store.js';
import { type Observation, observe } from './alert-conditions.js';

export const ALERT_FIRING = 'alert.firing';
export const ALERT_RESOLVED = 'alert.resolved';
const ACTOR = 'alerts';
/** How many of the newest alert events the first evaluation reads to learn which alerts are firing. */
const RESTORE_LIMIT = 1_000;
/** The most new events of one kind read per evaluation (more wait for the next one). */
const FOLLOW_LIMIT = 10_000;

export interface Alert {
  key: string;
  rule: string;
  severity: AlertSeverity;
  phase: AlertPhase;
  since: number;
  value: number | null;
  threshold: number | null;
  rolloutId: string | null;
  summary: string | null;
}

export interface AlertEvaluatorOptions {
  /** Evaluations closer together than this (by the clock) are skipped: `maybeEvaluate` on every engine tick. */
  minIntervalMs?: number;
  log?: { error(obj: unknown, msg: string): void };
  /** When each TUF role's metadata expires, for `tuf_expiry` rules (a server with a TUF repository). */
  tufExpiries?: () => Record<string, { expiresMs: number; warnMs: number }>;
}

interface Tracked {
  state: AlertState;
  rule: AlertRule;
  last: Observation | null;
}

export class AlertEvaluator {
  private rules: AlertRule[] = [];
  private readonly tracked = new Map<string, Tracked>();
  /** Alerts firing according to the event log: key → the firing event. */
  private readonly firingInLog = new Map<string, StoredEvent>();
  private alertCursor: number | undefined;
  private authCursor: number | undefined;
  /** Times of recent refused device authentications, oldest first. */
  private authFailures: number[] = [];
  /** The last audit entry looked at for failed operator authentications; undefined while no rule asks. */
  private auditCursor: number | undefined;
  /** Recent failed operator authentications (time, how many), oldest first. */
  private operatorFailures: Array<{ at: number; count: number }> = [];
  private lastEvaluation: number | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    private readonly options: AlertEvaluatorOptions = {},
  ) {}

  /** Replaces the rules (a reloaded file); alerts of rules that are gone resolve on the next evaluation. */
  setRules(rules: AlertRule[]): void {
    this.rules = rules;
  }

  listRules(): readonly AlertRule[] {
    return this.rules;
  }

  /** Pending, firing and recovering alerts as of the last evaluation, by key. */
  list(): Alert[] {
    return [...this.tracked.entries()]
      .map(([key, t]) => ({
        key,
        rule: t.rule.name,
        severity: t.rule.severity,
        phase: t.state.phase,
        since: t.state.since,
        value: t.last?.value ?? null,
        threshold: t.last?.threshold ?? null,
        rolloutId: t.last?.rolloutId ?? null,
        summary: t.rule.summary,
      }))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  /**
   * Learns which alerts the event log has firing, and starts counting refused authentications from now (the
   * server's start): call once before the first evaluation (the first evaluation does it otherwise).
   */
  async prime(): Promise<void> {
    if (this.alertCursor === undefined) await this.followLog();
  }

  /** Evaluates unless the last evaluation is more recent than `minIntervalMs`: what the engine tick calls. */
  maybeEvaluate(): Promise<void> {
    const now = this.clock.now();
    const gap = this.options.minIntervalMs ?? 15_000;
    if (this.lastEvaluation !== undefined && now - this.lastEvaluation < gap) return this.running;
    return this.evaluate();
  }

  /** One evaluation of every rule; evaluations never overlap. */
  evaluate(): Promise<void> {
    this.running = this.running.then(() => this.evaluateNow());
    return this.running;
  }

  private async evaluateNow(): Promise<void> {
    const now = this.clock.now();
    this.lastEvaluation = now;
    await this.followLog();
    await this.followAudit();
    const ctx = { now, thresholds: this.thresholds };
    const events: NewEvent[] = [];
    const seen = new Set<string>();
    for (const rule of this.rules) {
      let observations: Observation[];
      try {
        observations = await observe(
          rule,
          this.store,
          ctx,
          (windowMs) => this.authFailuresSince(now - windowMs),
          this.options.tufExpiries,
          (windowMs) => this.operatorFailuresSince(now - windowMs),
        );
      } catch (error) {
        // A rule that cannot be observed now keeps its alerts as they are; the others go on.
        this.options.log?.error({ err: error, rule: rule.name }, 'alert rule could not be evaluated');
        for (const key of this.keysOf(rule.name)) seen.add(key);
        continue;
      }
      const byKey = new Map(observations.map((o) => [o.key, o]));
      for (const key of new Set([...byKey.keys(), ...this.keysOf(rule.name)])) {
        seen.add(key);
        this.step(key, rule, byKey.get(key) ?? null, now, events);
      }
    }
    // Alerts of rules no longer in the file resolve: nobody would ever see them resolve otherwise.
    for (const [key, event] of this.firingInLog) {
      if (seen.has(key)) continue;
      this.tracked.delete(key);
      events.push(alertEvent(ALERT_RESOLVED, now, key, event.data, 'its rule was removed'));
    }
    for (const key of this.tracked.keys()) if (!seen.has(key)) this.tracked.delete(key);
    if (events.length > 0) {
      await this.store.appendEvents(events);
      await this.followLog();
    }
  }

  private step(
    key: string,
    rule: AlertRule,
    observation: Observation | null,
    now: number,
    out: NewEvent[],
  ): void {
    const logged = this.firingInLog.get(key);
    const previous =
      this.tracked.get(key)?.state ??
      (logged ? { phase: 'firing' as const, since: logged.at, clearSince: null } : null);
    const step = stepAlert(previous, observation?.holds ?? false, now, rule);
    if (step.state) this.tracked.set(key, { state: step.state, rule, last: observation });
    else this.tracked.delete(key);
    const data = {
      key,
      rule: rule.name,
      kind: rule.kind,
      severity: rule.severity,
      value: observation?.value ?? null,
      threshold: observation?.threshold ?? null,
      rollout: observation?.rolloutId ?? (logged?.rolloutId as string | null | undefined) ?? null,
    };
    if (step.transition === 'firing' && !logged) {
      out.push(alertEvent(ALERT_FIRING, now, key, data, rule.summary ?? describe(rule, observation)));
    } else if (step.transition === 'resolved' && logged) {
      out.push(
        alertEvent(ALERT_RESOLVED, now, key, { ...data, fired_at: logged.at }, 'the condition cleared'),
      );
    }
  }

  private keysOf(ruleName: string): string[] {
    const keys = new Set<string>();
    for (const key of [...this.tracked.keys(), ...this.firingInLog.keys()]) {
      if (key === ruleName || key.startsWith(`${ruleName}/`)) keys.add(key);
    }
    return [...keys];
  }

  /** Reads the alert and refused-authentication events written since the last look (the first: the newest). */
  private async followLog(): Promise<void> {
    if (this.alertCursor === undefined) {
      const head = await this.store.lastEventId();
      const newest = await this.store.listEvents({
        typePrefix: 'alert.',
        newestFirst: true,
        limit: RESTORE_LIMIT,
      });
      for (const e of newest.reverse()) this.noteAlertEvent(e);
      this.alertCursor = head;
      this.authCursor = head;
      return;
    }
    for (;;) {
      const events = await this.store.listEvents({
        after: this.alertCursor,
        typePrefix: 'alert.',
        limit: FOLLOW_LIMIT,
      });
      for (const e of events) this.noteAlertEvent(e);
      this.alertCursor = events.at(-1)?.id ?? this.alertCursor;
      if (events.length < FOLLOW_LIMIT) break;
    }
    const refused = await this.store.listEvents({
      after: this.authCursor ?? 0,
      typePrefix: 'device.auth_refused',
      limit: FOLLOW_LIMIT,
    });
    for (const e of refused) this.authFailures.push(e.at);
    this.authCursor = refused.at(-1)?.id ?? this.authCursor;
  }

  /**
   * Reads the audit entries written since the last look for failed operator authentications: from the head
   * when a rule first asks (the log every replica writes, so each counts the same failures).
   */
  private async followAudit(): Promise<void> {
    if (!this.rules.some((r) => r.kind === 'operator_auth_failures')) {
      this.auditCursor = undefined;
      this.operatorFailures = [];
      return;
    }
    if (this.auditCursor === undefined) {
      this.auditCursor = (await this.store.audit.head()).head.seq;
      return;
    }
    for (;;) {
      const entries = await this.store.audit.list({ afterSeq: this.auditCursor, limit: FOLLOW_LIMIT });
      for (const e of entries) {
        const count = operatorAuthFailures(e);
        if (count > 0) this.operatorFailures.push({ at: e.at, count });
      }
      this.auditCursor = entries.at(-1)?.seq ?? this.auditCursor;
      if (entries.length < FOLLOW_LIMIT) break;
    }
  }

  private noteAlertEvent(e: StoredEvent): void {
    const key = typeof e.data.key === 'string' ? e.data.key : null;
    if (key === null) return;
    if (e.type === ALERT_FIRING) this.firingInLog.set(key, e);
    else if (e.type === ALERT_RESOLVED) this.firingInLog.delete(key);
  }

  private authFailuresSince(since: number): number {
    // Kept only as long as the longest window a rule may ask for.
    const keepFrom =
      this.clock.now() - Math.max(0, ...this.rules.map((r) => (r.kind === 'auth_failures' ? r.windowMs : 0)));
    this.authFailures = this.authFailures.filter((at) => at >= keepFrom);
    return this.authFailures.filter((at) => at >= since).length;
  }

  private operatorFailuresSince(since: number): number {
    const keepFrom = this.clock.now() - longestWindow(this.rules, 'operator_auth_failures');
    this.operatorFailures = this.operatorFailures.filter((f) => f.at >= keepFrom);
    return this.operatorFailures.reduce((sum, f) => sum + (f.at >= since ? f.count : 0), 0);
  }
}

function longestWindow(rules: readonly AlertRule[], kind: AlertRule['kind']): number {
  return Math.max(0, ...rules.map((r) => (r.kind === kind && 'windowMs' in r ? r.windowMs : 0)));
}

function alertEvent(
  type: string,
  at: number,
  key: string,
  data: Record<string, unknown>,
  reason: string,
): NewEvent {
  const rollout = typeof data.rollout === 'string' ? data.rollout : null;
  return { at, type, deviceId: null, rolloutId: rollout, actor: ACTOR, reason, data: { ...data, key } };
}

function describe(rule: AlertRule, o: Observation | null): string {
  const v = o?.value;
  switch (rule.kind) {
    case 'offline_share':
      return `${v}% of devices${rule.filter ? ` matching ${rule.filter}` : ''} are offline (above ${rule.abovePct}%)`;
    case 'device_silent':
      return `${v} devices${rule.filter ? ` matching ${rule.filter}` : ''} silent for longer than ${rule.silentForMs / 1000}s`;
    case 'rollout_halted':
      return `rollout ${o?.rolloutId ?? ''} is halted`;
    case 'phase_failure_rate':
      return `rollout ${o?.rolloutId ?? ''}: ${v}% of its current phase's finished devices failed (above ${rule.abovePct}%)`;
    case 'auth_failures':
      return `${v} refused device authentications in ${rule.windowMs / 1000}s (above ${rule.above})`;
    case 'operator_auth_failures':
      return `${v} failed operator sign-ins and token uses in ${rule.windowMs / 1000}s (above ${rule.above})`;
    case 'tuf_expiry':
      return `TUF ${o?.key.split('/').pop() ?? ''} metadata expires in ${v} days (within ${o?.threshold} days)`;
  }
}
