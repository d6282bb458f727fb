/** Configuration rollouts in the storage port (docs/configuration.md): types and the interface only. */
import type { ConfigRolloutPlan, ConfigRolloutState, PhaseCounts } from '../core/config-rollout.js';
import type { TimeContext } from './store.js';

/** A staged configuration version rolled out phase by phase (core/config-rollout.ts decides each step). */
export interface ConfigRolloutRecord {
  id: string;
  name: string;
  /** The staged version it rolls out. */
  version: number;
  plan: ConfigRolloutPlan;
  /** The document's scope: its releases and promotion are made within it, its principals see it. */
  scope: string | null;
  state: ConfigRolloutState;
  /** The current phase, 0-based. */
  phase: number;
  /** When each phase so far started: the current one's is the last. */
  phaseStarts: number[];
  /** Why it halted, was cancelled or completed; null while it runs as planned. */
  reason: string | null;
  /** Each phase's counts as it ended; null while it is active. */
  finalCounts: PhaseCounts[] | null;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
}

/** What a driver step reads: the devices the staged version applies to, released to, and the phase's reports. */
export interface ConfigRolloutCounts {
  reach: number;
  released: number;
  counts: PhaseCounts;
}

/** A change of a rollout's row, made only from the states in `from`, with its event (`config.rollout.*`). */
export interface ConfigRolloutChange {
  from: readonly ConfigRolloutState[];
  state?: ConfigRolloutState;
  /** Starts this phase now. */
  phase?: number;
  reason?: string | null;
  /** It ends: each phase's counts kept as they are now (`now`) or as read before a promotion. */
  final?: PhaseCounts[] | 'now';
  event: { type: string; data?: Record<string, unknown> };
}

export interface ConfigRolloutStore {
  /**
   * Starts rolling staged version `version` of `name` out, with its `config.rollout.started` event. NOT_FOUND
   * without a staged version, CONFLICT when another version is staged or the document has an active rollout,
   * FORBIDDEN across scopes.
   */
  create(
    name: string,
    version: number,
    plan: ConfigRolloutPlan,
    scope: string | null,
    ctx: TimeContext,
    actor: string,
  ): Promise<ConfigRolloutRecord>;
  /** The document's active rollout, else its latest one. */
  latest(name: string): Promise<ConfigRolloutRecord | undefined>;
  /** Newest first: one document's, or every document's (at most `limit`). */
  list(name?: string, limit?: number): Promise<ConfigRolloutRecord[]>;
  /** What the devices each phase started so far released to reported (for an ended rollout, as it ended). */
  phaseCounts(rollout: ConfigRolloutRecord): Promise<PhaseCounts[]>;
  /** The running rollouts whose lease this replica holds or took now (free or lapsed): those it steps. */
  claimRunning(owner: string, now: number, leaseMs: number): Promise<ConfigRolloutRecord[]>;
  /** Gives this replica's leases back (a clean stop). */
  releaseLeases(owner: string): Promise<void>;
  /**
   * The counts a step decides on; undefined when the staged version is no longer the one rolled out (promoted,
   * dropped or replaced meanwhile).
   */
  stepCounts(rollout: ConfigRolloutRecord, ctx: TimeContext): Promise<ConfigRolloutCounts | undefined>;
  /**
   * Applies a change when the rollout is in one of `change.from` (and, given `leaseHolder`, still leased to it);
   * undefined when it moved on meanwhile (nothing written).
   */
  transition(
    id: string,
    change: ConfigRolloutChange,
    ctx: TimeContext,
    actor: string,
    leaseHolder?: string,
  ): Promise<ConfigRolloutRecord | undefined>;
}
