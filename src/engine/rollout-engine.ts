/**
 * The rollout reconciler: on every tick it announces this replica, claims its share of the rollout leases
 * (ceil(open rollouts / live replicas), see core/rollout/lease-share.ts), looks at each open rollout it holds and
 * takes the next decision the rules allow — start, time out, retry, judge a gate, open the next phase or
 * batch, switch a blue-green fleet, take in new devices, complete. Each decision is one store transaction
 * with its event, taken from what the store says now, so a restarted (or another) replica simply carries on.
 * Every decision's transaction checks that this replica still holds the rollout's lease (`leaseHolder`), so
 * one that stalled past its lease while another took the rollout over writes nothing (its write fails with
 * `LEASE_LOST`).
 * Devices are handed their slots when they ask (see the offer in store/shared/update-offer.ts), not here.
 */
import type { Clock } from '../core/clock.js';
import type { StatusThresholds } from '../core/device.js';
import { isFleetError } from '../core/errors.js';
import { parseFilter } from '../core/filter/index.js';
import { type StateCounts, tally } from '../core/rollout/counts.js';
import {
  crashRateVerdict,
  type HealthPolicy,
  type HealthSample,
  healthAdjustedCounts,
  healthReasons,
} from '../core/rollout/health-gate.js';
import {
  abortDecision,
  batchFinished,
  blueGreenDecision,
  type GateDecision,
  gateDecision,
} from '../core/rollout/phases.js';
import { planRollout } from '../core/rollout/plan.js';
import { currentOrNextWindow, windowZone } from '../core/rollout/window.js';
import type {
  DecisionContext,
  GateRecord,
  NewEvent,
  PhaseStateCount,
  Rollout,
  Store,
} from '../store/store.js';
import { OPEN_UPDATE_STATES_OF_ROLLOUT, phaseCounts, purposeCounts } from './counts.js';

export interface EngineOptions {
  /** Who this replica is: the lease owner's name. */
  owner: string;
  /**
   * A replica that stops renewing loses its rollouts after this long, and stops counting as live for the
   * others' shares of the leases.
   */
  leaseMs?: number;
  /** How often an on_connect rollout looks for devices that came to match its filter. */
  joinEveryMs?: number;
  log?: { error(obj: unknown, msg: string): void; warn(obj: unknown, msg: string): void };
  /** Called after each pass with its duration in ms (metrics, and the alert rules evaluated on the tick). */
  afterTick?: (passMs: number) => Promise<void>;
}

export class RolloutEngine {
  private readonly leaseMs: number;
  private readonly joinEveryMs: number;
  /** Throttle only: losing it on restart means one early look for newcomers, nothing more. */
  private readonly lastJoin = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    private readonly options: EngineOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.joinEveryMs = options.joinEveryMs ?? 60_000;
  }

  private ctx(): DecisionContext {
    return { now: this.clock.now(), thresholds: this.thresholds, leaseHolder: this.options.owner };
  }

  /**
   * One pass over every rollout this replica drives: its fair share of the open ones among the live replicas
   * (store claimLeases). A failure on one rollout does not stop the others.
   */
  async tick(): Promise<void> {
    const started = performance.now();
    await this.pass();
    await this.options.afterTick?.(performance.now() - started);
  }

  private async pass(): Promise<void> {
    const now = this.clock.now();
    // Announced with the lease's time: a replica that dies leaves the count when its leases run out.
    await this.store.replicas.announce(this.options.owner, now, this.leaseMs);
    const ids = await this.store.rollouts.claimLeases(this.options.owner, now, this.leaseMs);
    for (const id of ids) {
      try {
        await this.reconcile(id);
      } catch (error) {
        if (isFleetError(error) && error.code === 'LEASE_LOST') {
          // Another replica took this rollout over while this tick ran late: it carries on, nothing was written.
          this.options.log?.warn({ rollout: id, owner: this.options.owner }, 'rollout lease lost mid-tick');
        } else if (this.options.log) {
          this.options.log.error({ err: error, rollout: id }, 'rollout reconcile failed');
        } else throw error;
      }
    }
  }

  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  /** Ticks every `intervalMs`; a tick never starts while the previous one is still running. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.running = this.running
        .then(() => this.tick())
        .catch((error: unknown) => this.options.log?.error({ err: error }, 'engine tick failed'));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops ticking and gives this replica's rollouts up at once instead of letting the leases lapse. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    // Out of the count first, so the replicas that take the rollouts over size their shares without this one.
    await this.store.replicas.leave(this.options.owner);
    await this.store.rollouts.releaseLeases(this.options.owner);
  }

  async reconcile(id: string): Promise<void> {
    const r = await this.store.rollouts.get(id);
    if (!r) return;
    const ctx = this.ctx();
    if (r.state === 'scheduled') {
      const at = await this.startAt(r);
      // Started when the window opened, however late this tick is: missed windows are counted from there.
      if (at !== null && ctx.now >= at) await this.begin(r, ctx, r.spec.window === null ? ctx.now : at);
      return;
    }
    if (r.state !== 'running' && r.state !== 'paused' && r.state !== 'halted') return;
    // Devices that went silent mid-update give their slot back whatever the rollout's state.
    await this.store.rollouts.timeOut(r.id, ctx.now - r.spec.timeoutMs, ctx);
    if (r.state !== 'running') return;
    await this.store.rollouts.retryFailed(r.id, r.spec.retry, ctx);

    if (r.spec.endAt !== null && ctx.now >= r.spec.endAt) {
      if (await this.end(r, ctx)) return;
    } else if (r.spec.strategy === 'on_connect') {
      await this.joinNewcomers(r, ctx);
    }

    const counts = await this.store.rollouts.counts(r.id);
    const overridden = r.approvedPhase >= r.currentPhase && lastGate(r)?.decision === 'halt';
    const abort = overridden ? null : abortDecision(r.spec.abort, purposeCounts(counts, 'update'));
    if (abort)
      return this.halt(r, abort.reason, ctx, abort.successRate, finishedOf(purposeCounts(counts, 'update')));

    switch (r.spec.strategy) {
      case 'progressive':
        if (await this.judgeGate(r, phaseCounts(counts, r.currentPhase, 'update'), overridden, ctx)) return;
        break;
      case 'rolling':
        if (await this.nextBatch(r, counts, ctx)) return;
        break;
      case 'blue_green':
        await this.blueGreen(r, counts, ctx);
        break;
      default:
        break;
    }
    await this.completeIfDone(r, ctx);
  }

  /**
   * When a scheduled rollout starts: at `scheduled_at`, and with a window once the first target's window has
   * opened (seed 000: scheduled until then). Null: never (a window that never opens).
   */
  private async startAt(r: Rollout): Promise<number | null> {
    const from = r.spec.scheduledAt ?? 0;
    const window = r.spec.window;
    if (window === null) return from;
    const after = Math.max(from, r.createdAt);
    const zones = new Set((await this.store.rollouts.targetZones(r.id)).map((z) => windowZone(window, z)));
    if (zones.size === 0) return from;
    try {
      return Math.max(after, Math.min(...[...zones].map((z) => currentOrNextWindow(window, z, after).start)));
    } catch {
      return null; // the window never opens (its cron matches no date)
    }
  }

  private async begin(r: Rollout, ctx: DecisionContext, at = ctx.now): Promise<void> {
    const why = r.spec.window === null ? 'scheduled start reached' : 'first maintenance window opened';
    await this.store.rollouts.update(
      r.id,
      ['scheduled'],
      { state: 'running', startedAt: at, phaseStarts: [at] },
      [event(r, 'rollout.started', ctx, why, { phase: 0 })],
      ctx,
      { releasePhase: 0 },
    );
  }

  /** end_at: no device starts any more; `cancel` also calls off downloads. True when the rollout ended now. */
  private async end(r: Rollout, ctx: DecisionContext): Promise<boolean> {
    const cancel = r.spec.endAction === 'cancel';
    const reason = 'end_at reached';
    // With `stop` there is something to end only while devices still wait to start (retries included).
    const counts = await this.store.rollouts.counts(r.id);
    const waiting = counts.some((c) => (c.state === 'pending' || c.state === 'scheduled') && c.count > 0);
    if (!cancel && !waiting) return false;
    await this.store.rollouts.update(
      r.id,
      ['running'],
      cancel ? { state: 'cancelled', reason, finishedAt: ctx.now } : {},
      [event(r, cancel ? 'rollout.cancelled' : 'rollout.ended', ctx, reason, {})],
      ctx,
      { endWaiting: { to: cancel ? 'cancelled' : 'skipped', reason, alsoStarted: cancel, actor: null } },
    );
    return cancel;
  }

  private async halt(
    r: Rollout,
    reason: string,
    ctx: DecisionContext,
    successRate: number | null,
    finished: number,
  ): Promise<void> {
    const events = [
      event(r, 'rollout.halted', ctx, reason, { phase: r.currentPhase, success_rate: successRate }),
    ];
    const halt = gate(r.currentPhase, 'halt', reason, successRate, threshold(r), finished, ctx.now);
    const gates = recordGate(r, halt);
    if (!r.spec.rollbackOnHalt) {
      await this.store.rollouts.update(r.id, ['running'], { state: 'halted', reason, gates }, events, ctx);
      return;
    }
    // Halt and return every device the rollout changed to its previous version, in one decision.
    events.push(event(r, 'rollout.rolled_back', ctx, `rollback_on_halt: ${reason}`, {}));
    await this.store.rollouts.update(
      r.id,
      ['running'],
      { state: 'rolled_back', reason, gates, finishedAt: ctx.now },
      events,
      ctx,
      {
        endWaiting: {
          to: 'cancelled',
          reason: 'rollout halted and rolled back',
          alsoStarted: true,
          actor: null,
        },
        rollbackBy: 'engine',
      },
    );
  }

  /** Progressive: true when the decision ended the pass (halted). */
  private async judgeGate(
    r: Rollout,
    counts: StateCounts,
    overridden: boolean,
    ctx: DecisionContext,
  ): Promise<boolean> {
    const p = r.currentPhase;
    const phase = r.spec.phases[p]!;
    const health = phase.health ? await this.healthOf(r, p, phase.health, ctx) : null;
    const judged = health ? healthAdjustedCounts(counts, health.sample) : counts;
    let decision: GateDecision = gateDecision({
      phase,
      startedAt: r.phaseStarts[p] ?? ctx.now,
      now: ctx.now,
      counts: judged,
      approved: r.approvedPhase >= p,
      abort: null, // judged above for the whole rollout
    });
    if (health && decision.kind === 'halt' && health.reasons.length > 0) {
      decision = { ...decision, reason: `${decision.reason}: ${health.reasons.join(', ')}` };
    } else if (health?.crashRate && decision.kind !== 'wait') {
      // Compared once the phase can be judged: a few early crashes on a handful of devices prove little.
      decision = { kind: 'halt', successRate: tally(judged).successRate, reason: health.crashRate };
    }
    const finished = finishedOf(judged);
    if (decision.kind === 'halt' && !overridden) {
      await this.halt(r, `${phase.name}: ${decision.reason}`, ctx, decision.successRate, finished);
      return true;
    }
    if (decision.kind === 'wait' || decision.kind === 'await_approval') {
      const reason = decision.kind === 'wait' ? decision.reason : 'waiting for an operator to approve';
      const g = gate(
        p,
        decision.kind,
        reason,
        decision.kind === 'await_approval' ? decision.successRate : null,
        phase.successRate,
        finished,
        ctx.now,
      );
      await this.noteGate(r, g, `${phase.name}: ${reason}`, ctx);
      return false;
    }
    // Passed (or an operator overrode a halt). The last phase has nobody to hand over to.
    const rate = decision.kind === 'pass' ? decision.successRate : null;
    const reason = overridden && decision.kind === 'halt' ? 'halt overridden by an operator' : 'gate passed';
    const g = gate(p, 'pass', reason, rate, phase.successRate, finished, ctx.now);
    const last = p === r.spec.phases.length - 1;
    if (last) {
      await this.noteGate(r, g, `${phase.name}: ${reason}`, ctx);
      return false;
    }
    const next = r.spec.phases[p + 1]!;
    await this.store.rollouts.update(
      r.id,
      ['running'],
      {
        gates: recordGate(r, g),
        currentPhase: p + 1,
        phaseStarts: [...r.phaseStarts.slice(0, p + 1), ctx.now],
      },
      [
        event(r, 'rollout.gate', ctx, `${phase.name}: ${reason}`, gateData(g)),
        event(r, 'rollout.phase_started', ctx, `${next.name} (${next.percentage}%) started`, {
          phase: p + 1,
        }),
      ],
      ctx,
      { releasePhase: p + 1 },
    );
    return true;
  }

  /** The health gate's sample of phase `p`, the reasons its unhealthy devices failed, and the crash-rate verdict. */
  private async healthOf(
    r: Rollout,
    p: number,
    policy: HealthPolicy,
    ctx: DecisionContext,
  ): Promise<{ sample: HealthSample; reasons: string[]; crashRate: string | null }> {
    const sample = await this.store.rollouts.phaseHealth(r.id, p, {
      version: r.spec.releaseVersion,
      now: ctx.now,
      soakMs: policy.soakMs,
      darkAfterMs: policy.darkAfterMs,
      offlineAfterMs: this.thresholds.offlineAfterMs,
      maxReboots: policy.maxReboots,
      maxAppCrashes: policy.maxAppCrashes,
    });
    return { sample, reasons: healthReasons(sample), crashRate: crashRateVerdict(policy, sample) };
  }

  /** Records a gate decision that holds the phase where it is, once per new kind of decision or reason. */
  private async noteGate(r: Rollout, g: GateRecord, reason: string, ctx: DecisionContext): Promise<void> {
    if (sameGate(lastGate(r), g)) return;
    await this.store.rollouts.update(
      r.id,
      ['running'],
      { gates: recordGate(r, g) },
      [event(r, 'rollout.gate', ctx, reason, gateData(g))],
      ctx,
    );
  }

  /** Rolling: the next batch opens once the current one has nobody working or waiting online. */
  private async nextBatch(r: Rollout, all: PhaseStateCount[], ctx: DecisionContext): Promise<boolean> {
    const b = r.currentPhase;
    const lastBatch = Math.max(0, ...all.map((c) => c.phase));
    if (b >= lastBatch) return false;
    const waitingOnline = await this.store.rollouts.waitingOnline(r.id, b, ctx);
    if (!batchFinished(phaseCounts(all, b, 'update'), waitingOnline)) return false;
    await this.store.rollouts.update(
      r.id,
      ['running'],
      { currentPhase: b + 1, phaseStarts: [...r.phaseStarts.slice(0, b + 1), ctx.now] },
      [
        event(r, 'rollout.phase_started', ctx, `batch ${b + 2} started: batch ${b + 1} finished`, {
          phase: b + 1,
        }),
      ],
      ctx,
      { releasePhase: b + 1 },
    );
    return true;
  }

  /** Blue-green: stage everywhere, then switch everyone (and every late stager) once promoted or staged enough. */
  private async blueGreen(r: Rollout, counts: PhaseStateCount[], ctx: DecisionContext): Promise<void> {
    const staging = purposeCounts(counts, 'update');
    const excluded = (staging.skipped ?? 0) + (staging.cancelled ?? 0);
    const total = Object.values(staging).reduce((a, b) => a + (b ?? 0), 0);
    const decision = blueGreenDecision({
      targets: total - excluded,
      staged: staging.succeeded ?? 0,
      promoted: r.promoted,
      switchAt: r.spec.switchAt,
    });
    if (decision.kind !== 'switch') return;
    if (r.currentPhase === 0) {
      const why =
        decision.reason === 'promoted'
          ? 'promoted by an operator'
          : `${Math.round(decision.stagedShare)}% staged`;
      await this.store.rollouts.update(
        r.id,
        ['running'],
        { currentPhase: 1, phaseStarts: [r.phaseStarts[0] ?? ctx.now, ctx.now] },
        [
          event(r, 'rollout.switch', ctx, `switching every staged device: ${why}`, {
            staged: staging.succeeded ?? 0,
          }),
        ],
        ctx,
      );
    }
    await this.store.rollouts.addSwitches(r.id, ctx);
  }

  /** on_connect: devices that came to match the filter (new, or their firmware changed) join the rollout. */
  private async joinNewcomers(r: Rollout, ctx: DecisionContext): Promise<void> {
    const last = this.lastJoin.get(r.id);
    if (last !== undefined && ctx.now - last < this.joinEveryMs) return;
    this.lastJoin.set(r.id, ctx.now);
    const release = await this.store.releases.getById(r.releaseId);
    if (!release) return;
    const tagKey = r.spec.maxConcurrentPer?.tag ?? null;
    const newcomers = await this.store.rollouts.newcomers(r.id, parseFilter(r.spec.filter), tagKey, ctx);
    if (newcomers.length === 0) return;
    const plan = planRollout(r.spec, release, newcomers, ctx.now);
    const joining = plan.targets.filter((t) => t.state !== 'skipped');
    await this.store.rollouts.addTargets(r.id, joining, ctx);
  }

  private async completeIfDone(r: Rollout, ctx: DecisionContext): Promise<void> {
    const counts = await this.store.rollouts.counts(r.id);
    if (counts.some((c) => OPEN_UPDATE_STATES_OF_ROLLOUT.has(c.state) && c.count > 0)) return;
    const ended = r.spec.endAt !== null && ctx.now >= r.spec.endAt;
    if (r.spec.strategy === 'on_connect' && !ended) return;
    const lastPhase = Math.max(0, ...counts.filter((c) => c.purpose === 'update').map((c) => c.phase));
    if (
      (r.spec.strategy === 'progressive' || r.spec.strategy === 'rolling') &&
      r.currentPhase < lastPhase &&
      !ended
    )
      return;
    if (r.spec.strategy === 'blue_green' && r.currentPhase === 0 && !ended) return;
    const tally = purposeCounts(counts, 'update');
    const summary = Object.fromEntries(Object.entries(tally).filter(([, n]) => (n ?? 0) > 0));
    await this.store.rollouts.update(
      r.id,
      ['running'],
      { state: 'completed', finishedAt: ctx.now },
      [event(r, 'rollout.completed', ctx, 'every device update has finished', { counts: summary })],
      ctx,
    );
  }
}

function event(
  r: Rollout,
  type: string,
  ctx: DecisionContext,
  reason: string,
  data: Record<string, unknown>,
): NewEvent {
  return { at: ctx.now, type, deviceId: null, rolloutId: r.id, actor: 'engine', reason, data };
}

function gate(
  phase: number,
  decision: GateRecord['decision'],
  reason: string | null,
  successRate: number | null,
  threshold: number | null,
  finished: number,
  at: number,
): GateRecord {
  return { phase, decision, reason, successRate, threshold, finished, at };
}

const finishedOf = (c: StateCounts) => (c.succeeded ?? 0) + (c.failed ?? 0) + (c.rolled_back ?? 0);
const threshold = (r: Rollout) => r.spec.phases[r.currentPhase]?.successRate ?? null;
const lastGate = (r: Rollout) => r.gates.find((g) => g.phase === r.currentPhase);
/** One record per phase: its latest decision. */
const recordGate = (r: Rollout, g: GateRecord) => [...r.gates.filter((x) => x.phase !== g.phase), g];
/** A wait that only changed its figures is not worth an event; a new kind of decision or reason is. */
const sameGate = (a: GateRecord | undefined, b: GateRecord) =>
  a !== undefined && a.decision === b.decision && a.reason === b.reason;
const gateData = (g: GateRecord) => ({
  phase: g.phase,
  decision: g.decision,
  success_rate: g.successRate,
  threshold: g.threshold,
  finished: g.finished,
});
