/**
 * Heartbeats in group commit: those arriving in the same turn of the event loop are authenticated and written
 * in one transaction, then the devices with something pending are offered it; each heartbeat is answered only
 * after its batch committed. Should the offers fail after the heartbeats committed, group commit writes each
 * heartbeat again alone: harmless, as a heartbeat written twice at the same instant changes nothing more.
 */
import type { Clock } from '../core/clock.js';
import type { StatusThresholds } from '../core/device.js';
import type { ConfigOffer } from '../store/config-store.js';
import type {
  DeliveredCommand,
  HeartbeatOutcome,
  PresentedHeartbeat,
  Store,
  UpdateOffer,
} from '../store/store.js';
import { GroupCommit } from './group-commit.js';

export interface HeartbeatAnswer {
  outcome: HeartbeatOutcome;
  /** What is pending for the device; empty when there is nothing or the heartbeat was refused. */
  offers: UpdateOffer[];
  /** Remote commands handed to the device now (docs/remote-commands.md); each is handed over once. */
  commands: DeliveredCommand[];
  /** The desired configuration (docs/configuration.md), when a document applies to the device. */
  config?: ConfigOffer;
}

export class HeartbeatBatcher {
  private readonly group: GroupCommit<PresentedHeartbeat, HeartbeatAnswer>;
  /** Heartbeats accepted so far (the metrics' counter; refused ones are `device.auth_refused` events). */
  accepted = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    maxBatch = 1_000,
    /** The fleet-wide egress cap in bytes per second: downloads granted at once fit under it (docs/bandwidth.md). */
    private readonly egressCap?: number,
  ) {
    this.group = new GroupCommit((batch) => this.write(batch), maxBatch);
  }

  submit(heartbeat: PresentedHeartbeat): Promise<HeartbeatAnswer> {
    return this.group.submit(heartbeat);
  }

  private async write(batch: PresentedHeartbeat[]): Promise<HeartbeatAnswer[]> {
    const ctx = { now: this.clock.now(), thresholds: this.thresholds };
    const outcomes = await this.store.recordHeartbeats(batch, ctx);
    for (const outcome of outcomes) if (outcome.ok) this.accepted++;
    // Most devices have nothing pending: only those that do cost a second query.
    const withUpdates = batch
      .filter((_, i) => {
        const outcome = outcomes[i]!;
        return outcome.ok && outcome.hasOpenUpdates;
      })
      .map((h) => h.heartbeat.deviceId);
    const offers = await this.store.updates.offer(
      withUpdates,
      ctx,
      this.egressCap === undefined ? {} : { egressCap: this.egressCap },
    );
    const accepted = batch.filter((_, i) => outcomes[i]!.ok).map((h) => h.heartbeat.deviceId);
    const commands = await this.store.commands.deliver(accepted, ctx);
    const configs = await this.store.config.offers(accepted, ctx);
    return batch.map((h, i) => ({
      outcome: outcomes[i]!,
      offers: offers.get(h.heartbeat.deviceId) ?? [],
      commands: outcomes[i]!.ok ? (commands.get(h.heartbeat.deviceId) ?? []) : [],
      ...(outcomes[i]!.ok && configs.has(h.heartbeat.deviceId)
        ? { config: configs.get(h.heartbeat.deviceId)! }
        : {}),
    }));
  }
}
