/**
 * The delivery worker (docs/agentless.md): the agent of devices that run none. On each pass it asks the store
 * for the offers of the agentless devices — the same offer a heartbeat gets, so a rollout's strategy, windows,
 * concurrency, gates and retries decide who goes now — and delivers each granted update by its device's method,
 * reporting every step through the report batcher, as an agent's reports arrive. The first report claims the
 * update: a report whose sequence number another replica (or an earlier pass) has used already is refused, and
 * only the replica whose claim was accepted goes on.
 *
 * The egress cap (docs/bandwidth.md) holds for deliveries as for downloads: the offers are asked with the cap, so a
 * delivery takes one of its download slots (from the claim, `downloading`, until the upload ends, `installing`),
 * and the pushed bytes pass the same token bucket as every artifact byte the server sends, besides the
 * download's own limit (the rollout's `download_rate_limit` or the device's tag).
 */
import { pipeline, type Readable, type Transform } from 'node:stream';
import type { BlobStore } from '../../artifacts/blob-store.js';
import type { Clock } from '../../core/clock.js';
import type { StatusThresholds } from '../../core/device.js';
import type { PacingTime } from '../../core/token-bucket.js';
import type { DeviceReportedState } from '../../core/update-state.js';
import type { DeviceDelivery } from '../../store/delivery-store.js';
import type { ReportItem, ReportOutcome, Store, UpdateOffer } from '../../store/store.js';
import { EgressLimit, realPacingTime } from '../egress-limit.js';
import type { DeliveryJob, DeliveryPhase } from './delivery-job.js';
import type { DeliveryKey } from './delivery-key.js';
import { pushOverHttp } from './http-push.js';
import { pushOverSsh } from './ssh-push.js';

/** Agentless devices read per store visit. */
const PAGE = 500;
/** Longest an update's error message grows (a command's output tail, an HTTP answer's start). */
const MAX_ERROR = 600;

export interface DeliveryWorkerOptions {
  /** Deliveries at once on this replica (default 4): each holds a connection and reads one artifact. */
  concurrency?: number;
  /** How long one step (connect, upload, a command, a POST) may take (default 10 min). */
  stepTimeoutMs?: number;
  log: { error(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** The fleet-wide egress cap (`--egress-cap`): deliveries take its download slots and its bytes. */
  egress?: EgressLimit | undefined;
  /** The time a delivery's own rate limit is paced by: real by default, virtual in tests. */
  pacing?: PacingTime | undefined;
}

interface Reporter {
  submit(item: ReportItem): Promise<ReportOutcome>;
}

export class DeliveryWorker {
  private readonly running = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<void> | undefined;
  private readonly concurrency: number;
  private readonly stepTimeoutMs: number;

  constructor(
    private readonly store: Store,
    private readonly reports: Reporter,
    private readonly blobs: Pick<BlobStore, 'createReadStream'>,
    private readonly clock: Clock,
    private readonly thresholds: StatusThresholds,
    private readonly key: DeliveryKey,
    private readonly options: DeliveryWorkerOptions,
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.stepTimeoutMs = options.stepTimeoutMs ?? 10 * 60_000;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.pass(), Math.max(intervalMs, 50));
    this.timer.unref();
  }

  /** Stops passes and waits for the deliveries under way (each ends with its report). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.passing;
    await this.idle();
  }

  /** One pass; returns once the deliveries it started are under way (not finished: see `idle`). */
  pass(): Promise<void> {
    this.passing ??= this.offerAndStart()
      .catch((error: unknown) => this.options.log.error({ err: error }, 'agentless delivery pass failed'))
      .finally(() => {
        this.passing = undefined;
      });
    return this.passing;
  }

  /** Waits for every delivery under way. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  private async offerAndStart(): Promise<void> {
    let after: string | undefined;
    for (;;) {
      if (this.running.size >= this.concurrency) return;
      const page = await this.store.delivery.list({ ...(after === undefined ? {} : { after }), limit: PAGE });
      if (page.length === 0) return;
      after = page.at(-1)!.deviceId;
      const byDevice = new Map(page.map((d) => [d.deviceId, d]));
      const idle = page.map((d) => d.deviceId).filter((id) => !this.running.has(id));
      const offers = await this.store.updates.offer(
        idle,
        { now: this.clock.now(), thresholds: this.thresholds },
        this.options.egress === undefined ? {} : { egressCap: this.options.egress.bytesPerSec },
      );
      for (const [deviceId, list] of offers) {
        const offer = list.find(startable);
        if (!offer || this.running.size >= this.concurrency) continue;
        const run = this.deliver(byDevice.get(deviceId)!, offer).finally(() => this.running.delete(deviceId));
        this.running.set(deviceId, run);
      }
      if (page.length < PAGE) return;
    }
  }

  /** The artifact's bytes through the fleet-wide cap and the download's own limit, as a device download's are. */
  private paced(bytes: Readable, offer: UpdateOffer): Readable {
    const stages: Transform[] = [];
    if (this.options.egress) stages.push(this.options.egress.throttle());
    if (offer.downloadRateLimit !== undefined) {
      const time = this.options.pacing ?? realPacingTime;
      stages.push(new EgressLimit(offer.downloadRateLimit, time.now, time.wait).throttle());
    }
    if (stages.length === 0) return bytes;
    // An error anywhere destroys every stage, so the push reading the last one fails with it.
    return pipeline([bytes, ...stages], () => undefined) as Transform;
  }

  private async deliver(target: DeviceDelivery, offer: UpdateOffer): Promise<void> {
    const { update, release } = offer;
    let seq = update.lastSeq;
    const report = async (state: DeviceReportedState, error?: string) => {
      seq += 1;
      const at = { deviceId: target.deviceId, updateId: update.id };
      const report = { seq, state, ...(error === undefined ? {} : { error: error.slice(0, MAX_ERROR) }) };
      return this.reports.submit({ ...at, report });
    };
    // The claim: refused when another pass or replica has taken this update already.
    const claim = await report('downloading').catch((error: unknown) => {
      this.options.log.error({ err: error, update: update.id }, 'agentless delivery: claim failed');
      return undefined;
    });
    if (!claim?.accepted) return;
    const job: DeliveryJob = {
      update,
      release,
      action: update.action,
      open: async (): Promise<Readable> =>
        this.paced(await this.blobs.createReadStream(release.sha256), offer),
    };
    const phase = async (p: DeliveryPhase) => {
      if (p !== 'uploaded') await report(p);
    };
    const d = target.delivery;
    try {
      if (d.method === 'ssh') await pushOverSsh(d, this.key.credentials(), job, phase, this.stepTimeoutMs);
      else await pushOverHttp(d, job, phase, this.stepTimeoutMs);
      await report('succeeded');
      this.options.log.info(
        { device: target.deviceId, update: update.id, method: d.method },
        'agentless delivery succeeded',
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      // The reason (a command's output among it) goes to the update's record, which operators read, not the log.
      this.options.log.info(
        { device: target.deviceId, update: update.id, method: d.method },
        'agentless delivery failed',
      );
      await report('failed', reason).catch((e: unknown) =>
        this.options.log.error(
          { err: e, update: update.id },
          'agentless delivery: the failure could not be reported',
        ),
      );
    }
  }
}

/** An update the server may start now: granted (notified), not held back, and not taken up by anyone yet. */
const startable = (o: UpdateOffer) => o.update.state === 'notified' && o.retryAfterSec === null;
