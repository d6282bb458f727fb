/**
 * The configuration rollout driver (docs/configuration.md, "Rolling a staged version out with a strategy"): on
 * each engine tick it steps the running configuration rollouts whose lease this replica holds. A step releases
 * the current phase's share of the devices the staged version applies to (the staged release, never a firmware
 * update row), then lets the gate (core/config-rollout.ts) decide: wait, the next phase, the end (promoting when
 * asked), or a halt. Each change is a `config.rollout.*` event written with the row, only from the state it read.
 */
import type { Clock } from '../core/clock.js';
import { configRolloutStep, type PhaseCounts, type StepDecision } from '../core/config-rollout.js';
import type { StatusThresholds } from '../core/device.js';
import type { ConfigRolloutRecord } from '../store/config-rollout-store.js';
import type { Store, TimeContext } from '../store/store.js';

/** The actor of what the driver does by itself, as the rollout engine's. */
const ACTOR = 'engine';

export interface ConfigRolloutDriverOptions {
  /** This replica's name: the lease owner's. */
  owner: string;
  leaseMs?: number;
  log?: { error(obj: object, msg: string): void };
}

export class ConfigRolloutDriver {
  private readonly leaseMs: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    private readonly options: ConfigRolloutDriverOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
  }

  /** One step of every running configuration rollout this replica holds; one failing does not stop the others. */
  async advanceConfigRollouts(now: number = this.clock.now()): Promise<void> {
    const ctx: TimeContext = { now, thresholds: this.thresholds };
    const held = await this.store.configRollouts.claimRunning(this.options.owner, now, this.leaseMs);
    for (const rollout of held) {
      try {
        await this.step(rollout, ctx);
      } catch (error) {
        if (!this.options.log) throw error;
        this.options.log.error(
          { err: error, configRollout: rollout.id },
          'configuration rollout step failed',
        );
      }
    }
  }

  /** Gives this replica's leases back, so another replica steps its rollouts at once. */
  stop(): Promise<void> {
    return this.store.configRollouts.releaseLeases(this.options.owner);
  }

  private async step(start: ConfigRolloutRecord, ctx: TimeContext): Promise<void> {
    let rollout: ConfigRolloutRecord | undefined = start;
    // Empty phases pass at once (a small fleet): a step may cross several, never more than there are.
    for (let turns = 0; rollout && turns <= 2 * rollout.plan.phases.length + 1; turns++) {
      const read = await this.store.configRollouts.stepCounts(rollout, ctx);
      if (!read) {
        await this.change(rollout, ctx, 'cancelled', 'config.rollout.cancelled', {
          reason: `staged version ${rollout.version} is no longer staged (promoted, dropped or replaced)`,
          final: 'now',
        });
        return;
      }
      const decision: StepDecision = configRolloutStep({
        plan: rollout.plan,
        phase: rollout.phase,
        phaseStartedAt: rollout.phaseStarts[rollout.phaseStarts.length - 1]!,
        now: ctx.now,
        ...read,
      });
      switch (decision.kind) {
        case 'release': {
          const { released } = await this.store.config.release(
            rollout.name,
            rollout.version,
            { count: decision.count },
            rollout.scope,
            ctx,
            ACTOR,
          );
          // None left to release (devices left the target meanwhile): the gate judges what the phase has.
          if (released === 0) return this.judge(rollout, ctx, { ...read, released: read.reach });
          continue;
        }
        case 'next':
          rollout = await this.change(rollout, ctx, undefined, 'config.rollout.phase', {
            phase: rollout.phase + 1,
            previous: read.counts,
          });
          continue;
        default:
          return this.apply(rollout, decision, ctx, read.counts);
      }
    }
  }

  private async judge(
    rollout: ConfigRolloutRecord,
    ctx: TimeContext,
    read: { reach: number; released: number; counts: { released: number; applied: number; failed: number } },
  ): Promise<void> {
    const decision = configRolloutStep({
      plan: rollout.plan,
      phase: rollout.phase,
      phaseStartedAt: rollout.phaseStarts[rollout.phaseStarts.length - 1]!,
      now: ctx.now,
      ...read,
    });
    if (decision.kind === 'next') {
      await this.change(rollout, ctx, undefined, 'config.rollout.phase', { phase: rollout.phase + 1 });
    } else if (decision.kind !== 'release') await this.apply(rollout, decision, ctx, read.counts);
  }

  private async apply(
    rollout: ConfigRolloutRecord,
    decision: Exclude<StepDecision, { kind: 'release' | 'next' }>,
    ctx: TimeContext,
    counts: object,
  ): Promise<void> {
    if (decision.kind === 'wait') return;
    if (decision.kind === 'halt') {
      await this.change(rollout, ctx, 'halted', 'config.rollout.halted', { reason: decision.reason, counts });
      return;
    }
    // The last phase passed: every device it applies to holds it. Its counts are kept first: the releases they
    // are read from go with the staged version when it is promoted.
    const final = await this.store.configRollouts.phaseCounts(rollout);
    if (rollout.plan.promote) {
      await this.store.config.promote(rollout.name, rollout.version, rollout.scope, ctx, ACTOR);
    }
    await this.change(rollout, ctx, 'completed', 'config.rollout.completed', {
      reason: rollout.plan.promote
        ? `promoted: version ${rollout.version} is the current version`
        : `released to every device it applies to; promote it with fleetd config promote ${rollout.name} ${rollout.version}`,
      counts,
      final,
    });
  }

  private change(
    rollout: ConfigRolloutRecord,
    ctx: TimeContext,
    state: 'halted' | 'completed' | 'cancelled' | undefined,
    type: string,
    what: {
      reason?: string;
      phase?: number;
      counts?: object;
      previous?: object;
      final?: PhaseCounts[] | 'now';
    },
  ): Promise<ConfigRolloutRecord | undefined> {
    const data: Record<string, unknown> = {};
    if (what.counts) data.counts = what.counts;
    if (what.previous) data.previous = what.previous;
    return this.store.configRollouts.transition(
      rollout.id,
      {
        from: ['running'],
        ...(state ? { state } : {}),
        ...(what.phase === undefined ? {} : { phase: what.phase }),
        ...(what.reason === undefined ? {} : { reason: what.reason }),
        ...(what.final === undefined ? {} : { final: what.final }),
        event: { type, data },
      },
      ctx,
      ACTOR,
      this.options.owner,
    );
  }
}
