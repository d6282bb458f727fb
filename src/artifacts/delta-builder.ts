/**
 * Builds binary deltas in the background: a bounded queue worked by one or two builds at a time, each an
 * external tool run as a child process on the blob store's files, so the server's memory does not grow with
 * the image. A delta is signed, stored as a blob and recorded; a pair built (or failed) once is not built
 * again. Deltas no smaller than the full image are not kept: the full download is then the better offer.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import {
  buildCommand,
  canonicalDeltaManifest,
  DEFAULT_DELTA_TOOL,
  type DeltaRelease,
  type DeltaTool,
  deltaSources,
} from '../core/delta.js';
import type { Store } from '../store/store.js';
import type { FsBlobStore } from './blob-store.js';
import { runTool } from './run-tool.js';

export interface DeltaLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DeltaBuilderOptions {
  store: Store;
  blobs: FsBlobStore;
  clock: Clock;
  log: DeltaLog;
  /** Where builds write before their output becomes a blob. */
  workDir: string;
  /** Signs a delta manifest with the release-signing key; undefined when the server does not sign. */
  sign: ((text: string) => { signature: string; keyId: string }) | undefined;
  tool?: DeltaTool;
  /** Builds at once (default 1; at most 2 makes sense on a small server). */
  concurrency?: number;
  /** Pairs waiting at most; more are dropped (and asked for again by the next rollout of that release). */
  maxQueued?: number;
}

interface Job {
  source: DeltaRelease;
  target: DeltaRelease;
}

export class DeltaBuilder {
  readonly tool: DeltaTool;
  private readonly queue: Job[] = [];
  /** Pairs queued, building or done (built, failed or not worth keeping) in this process. */
  private readonly seen = new Set<string>();
  private running = 0;
  private toolMissing = false;
  private waiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private planning: Promise<void> = Promise.resolve();

  constructor(private readonly o: DeltaBuilderOptions) {
    this.tool = o.tool ?? DEFAULT_DELTA_TOOL;
  }

  /** Asks for deltas to the rollout's release from every version its devices ran; returns at once. */
  planRollout(rolloutId: string, targetReleaseId: string): void {
    this.planning = this.planning
      .then(() => this.plan(rolloutId, targetReleaseId))
      .catch((e: unknown) => this.o.log.warn({ err: e, rollout: rolloutId }, 'delta planning failed'));
  }

  /** Resolves when nothing is planned, queued or building (tests and the benchmark wait on it). */
  async idle(): Promise<void> {
    await this.planning;
    if (this.running === 0 && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Stops builds in flight (their child is killed) and drops the queue. */
  stop(): void {
    this.queue.length = 0;
    this.abort.abort();
  }

  private async plan(rolloutId: string, targetReleaseId: string): Promise<void> {
    if (!this.o.sign || this.toolMissing) return;
    const target = await this.o.store.releases.getById(targetReleaseId);
    if (!target) return;
    const versions = await this.o.store.deltas.versionsInRollout(rolloutId);
    if (versions.length === 0) return;
    const sameName = (await this.o.store.releases.list()).filter((r) => r.name === target.name);
    const built = new Set(
      (await this.o.store.deltas.toTarget(target.id))
        .filter((d) => d.tool === this.tool)
        .map((d) => d.sourceReleaseId),
    );
    for (const source of deltaSources(target, versions, sameName, built)) this.enqueue({ source, target });
  }

  private enqueue(job: Job): void {
    const key = `${job.source.id}>${job.target.id}`;
    if (this.seen.has(key)) return;
    if (this.queue.length >= (this.o.maxQueued ?? 64)) {
      this.o.log.warn(
        { source: job.source.id, target: job.target.id },
        'delta queue full; not building this delta',
      );
      return;
    }
    this.seen.add(key);
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    const limit = Math.min(2, Math.max(1, this.o.concurrency ?? 1));
    while (this.running < limit && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void this.build(job)
        .catch((e: unknown) =>
          this.o.log.warn({ err: e, source: job.source.id, target: job.target.id }, 'delta build failed'),
        )
        .finally(() => {
          this.running--;
          this.pump();
          if (this.running === 0 && this.queue.length === 0) {
            for (const w of this.waiters.splice(0)) w();
          }
        });
    }
  }

  private async build({ source, target }: Job): Promise<void> {
    const sign = this.o.sign;
    if (!sign || this.toolMissing || this.abort.signal.aborted) return;
    const started = this.o.clock.now();
    await mkdir(this.o.workDir, { recursive: true });
    const out = join(this.o.workDir, `${randomBytes(8).toString('hex')}.delta`);
    try {
      const ran = await runTool(
        buildCommand(this.tool, {
          source: this.o.blobs.path(source.sha256),
          input: this.o.blobs.path(target.sha256),
          output: out,
        }),
        this.abort.signal,
      );
      if (!ran.ok) {
        if (ran.missing) {
          this.toolMissing = true;
          this.o.log.warn({ tool: this.tool }, `${this.tool} is not installed: no deltas are built`);
          return;
        }
        throw new Error(ran.reason);
      }
      const size = (await stat(out)).size;
      const targetSize = (await stat(this.o.blobs.path(target.sha256))).size;
      if (size >= targetSize) {
        this.o.log.info(
          { source: source.id, target: target.id, size },
          'delta not smaller than the image; not kept',
        );
        return;
      }
      // Opened before it is handed over, so a file gone meanwhile (the server stopping) is this build's
      // error, not a stream's unhandled one.
      const file = await open(out, 'r');
      const blob = await this.o.blobs.put(file.createReadStream());
      const manifest = canonicalDeltaManifest({
        tool: this.tool,
        size: blob.size,
        sha256: blob.sha256,
        source_sha256: source.sha256,
        target_sha256: target.sha256,
      });
      const { signature, keyId } = sign(manifest);
      const buildMs = this.o.clock.now() - started;
      await this.o.store.deltas.record({
        id: `dlt_${randomBytes(10).toString('hex')}`,
        sourceReleaseId: source.id,
        targetReleaseId: target.id,
        tool: this.tool,
        size: blob.size,
        sha256: blob.sha256,
        manifest,
        signature,
        keyId,
        buildMs,
        createdAt: this.o.clock.now(),
      });
      this.o.log.info(
        {
          source: `${source.name}@${source.version}`,
          target: target.version,
          size: blob.size,
          tool: this.tool,
        },
        'delta built',
      );
    } finally {
      await rm(out, { force: true });
    }
  }
}
