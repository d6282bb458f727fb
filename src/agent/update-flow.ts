/**
 * One update, from the heartbeat that offers it to the commit or rollback. Every step is skipped when
 * already done (the slot holds the release, the trial marker is down, the outbox has the report), so an
 * agent restarted after a kill walks the same path to where it stopped and carries on from there.
 */
import type { KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { PacingTime } from '../core/token-bucket.js';
import type { DeviceClient, PendingUpdate } from './client.js';
import { type Consent, consentAnswer } from './consent-hook.js';
import { updateByDelta } from './delta-update.js';
import type { DirectorVerifier } from './director-verifier.js';
import { DownloadError, type HttpFetch } from './downloader.js';
import { checkHealth, type HealthCheck } from './health.js';
import { EXTRACTED_TYPES, type InstallerConfig } from './installers.js';
import type { Logger } from './log.js';
import { Cancelled, type Reporter } from './reporter.js';
import { Backoff, type Random } from './schedule.js';
import { decideTrial, other, type SlotName, type Slots } from './slots.js';
import type { JobRecord, StateDir } from './state-dir.js';
import type { TufAdopter, TufAdoption } from './tuf-adoption.js';
import type { TufVerifier } from './tuf-verifier.js';
import { type Manifest, type Verdict, verifyArtifact, verifyRelease } from './verify.js';

/** How long a device whose consent hook declined waits before asking it again. */
const CONSENT_RETRY_SEC = 300;

export interface FlowOptions {
  hardwareType: string;
  /**
   * For soft updates: asked before installing (the download is kept meanwhile); it may defer the update through
   * the server, within the rollout's budget, or say "not yet" (false).
   */
  consent?: Consent | undefined;
  publicKey: KeyObject;
  /** With a provisioned TUF root: a release must also be a signed TUF target (the pinned key is checked too). */
  tuf?: TufVerifier | undefined;
  /** Without a TUF root: how an update offered with `adopt_tuf` brings one (tuf-adoption.ts). */
  adoptTuf?: TufAdopter | undefined;
  /** With a provisioned director root: the director must also have signed the release for this device. */
  director?: DirectorVerifier | undefined;
  health?: HealthCheck | (() => Promise<Verdict>) | undefined;
  healthDeadlineMs?: number | undefined;
  healthIntervalMs?: number | undefined;
  maxTrialRestarts?: number | undefined;
  scriptTimeoutMs?: number | undefined;
  /** What the install handlers need to know about this device (docs/installers.md). */
  installers?: InstallerConfig | undefined;
  /** Supervised applications: a crash loop fails the health check. */
  appHealth?: (() => Promise<Verdict>) | undefined;
  /** Called after the active slot changed (switch or rollback): supervised applications restart. */
  onSwitch?: (() => Promise<void>) | undefined;
  /** Boots the bootloader grants a trial (the `boot-count` it decrements), default 3. */
  trialBoots?: number | undefined;
  fetch?: HttpFetch | undefined;
  /** Take offered deltas (default true; the simulator's in-memory slots hold no image to apply them to). */
  deltas?: boolean | undefined;
  /** The time a download's rate limit is paced by: real by default, virtual in tests. */
  downloadPacing?: PacingTime | undefined;
}

/** What the flow works with, owned by the Agent. */
export interface FlowDeps {
  state: StateDir;
  slots: Slots;
  reports: Reporter;
  client: DeviceClient;
  clock: Clock;
  random: Random;
  log: Logger;
  /** Aborted when the agent stops: a download in flight ends (its part file stays). */
  signal: AbortSignal;
  firmwareVersion: () => Promise<string | undefined>;
  /** Called just before a release is installed (the health counters start again for it). */
  beforeInstall?: () => Promise<void>;
}

export class UpdateFlow {
  private readonly state: StateDir;
  private readonly slots: Slots;
  private readonly reports: Reporter;
  private readonly client: DeviceClient;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly retry: Backoff;
  private holdMs: number | undefined;
  /** The TUF verifier: the provisioned root's, or one adopted through a rollout. */
  private tuf: TufVerifier | undefined;

  constructor(
    private readonly options: FlowOptions,
    private readonly deps: FlowDeps,
  ) {
    this.state = deps.state;
    this.slots = deps.slots;
    this.reports = deps.reports;
    this.client = deps.client;
    this.clock = deps.clock;
    this.log = deps.log;
    this.retry = new Backoff(deps.random);
    this.tuf = options.tuf;
  }

  /** When the flow wants to run again: the server's retry_after, or a backoff after an interrupted step. */
  waitMs(): number | undefined {
    const retry = this.retry.waitMs(this.clock.now());
    const waits = [this.holdMs, retry > 0 ? retry : undefined].filter((w): w is number => w !== undefined);
    return waits.length > 0 ? Math.min(...waits) : undefined;
  }

  /** A trial found at start means the agent stopped between switching and committing. */
  async recoverTrial(): Promise<void> {
    const trial = await this.slots.countRestart();
    if (!trial) return;
    const max = this.options.maxTrialRestarts ?? 3;
    const boots = await this.slots.bootsLeft();
    const decision = decideTrial(trial.restarts, max, this.reports.lastState(trial.update_id), boots);
    this.log.info('resuming a trial after restart', { ...trial, decision });
    try {
      if (decision === 'commit') {
        await this.slots.resumeTrial(trial);
        await this.settleTrial('commit'); // again: the agent may have stopped before it ran
        await this.commit();
      } else if (decision === 'rollback') {
        await this.rollback();
      } else if (decision === 'crash-loop') {
        await this.reports.report(trial.update_id, 'rolled_back', {
          error:
            boots === 0
              ? 'crash loop: the boot counter ran out without a commit'
              : `crash loop: agent restarted ${trial.restarts} times without committing`,
        });
        await this.rollback();
      } else {
        await this.slots.resumeTrial(trial);
        await this.verifyTrial(trial.update_id);
      }
    } catch (e) {
      if (!(e instanceof Cancelled)) throw e;
      await this.cancelJob(trial.update_id);
    }
  }

  /** Works on the update in progress, else on the first one pending that is not finished. */
  async work(pending: PendingUpdate[]): Promise<void> {
    this.holdMs = undefined;
    let updateId: string | undefined;
    try {
      const trial = await this.slots.trial();
      if (trial) {
        updateId = trial.update_id;
        return await this.verifyTrial(trial.update_id); // an earlier check threw: try it again
      }
      let job = await this.state.readJob();
      if (job && this.reports.isFinished(job.id)) {
        await this.state.clearJob(); // stopped after the final report, before clearing the job
        job = undefined;
      }
      const entry = job ? pending.find((u) => u.id === job?.id) : pending.find((u) => this.reports.wanted(u));
      updateId = entry?.id ?? job?.id;
      if (job && this.reports.isCancelled(job.id)) return await this.cancelJob(job.id);
      if (job && !entry) return await this.dropJob(job, 'no longer pending on the server');
      if (!entry) return;
      if (!job && entry.retry_after !== null)
        return this.hold(entry, entry.hold_reason ?? 'the server holds it back');
      job ??= await this.startJob(entry);
      if (!job) return;
      if (job.action !== entry.action) {
        job = { ...job, action: entry.action }; // e.g. a staged download_only now told to switch
        await this.state.writeJob(job);
      }
      await this.runJob(job, entry);
      this.retry.succeeded();
    } catch (e) {
      if (updateId === undefined) throw e;
      if (e instanceof Cancelled || this.reports.isCancelled(updateId)) return this.cancelJob(updateId);
      if (e instanceof DownloadError && e.permanent) return this.fail(updateId, e.message);
      const wait = this.retry.failed(this.clock.now());
      this.log.warn('update interrupted; will resume', {
        update: updateId,
        error: (e as Error).message,
        wait,
      });
    }
  }

  /** Not now: the server has no slot for it yet, or the device's consent hook declined. Asks again later. */
  private hold(u: PendingUpdate, why: string, seconds = u.retry_after ?? 300): void {
    this.holdMs = seconds * 1000;
    this.log.info('update held', { update: u.id, why, retry_in_s: seconds });
  }

  /** A new update: checked before anything is downloaded or a slot emptied. */
  private async startJob(u: PendingUpdate): Promise<JobRecord | undefined> {
    const verdict = await this.verifyManifest(u.manifest, u.signature);
    if (!verdict.ok) {
      await this.reports.report(u.id, 'failed', { error: verdict.reason });
      return undefined;
    }
    let adoption: TufAdoption | undefined;
    if (!this.tuf && u.adopt_tuf && this.options.adoptTuf) {
      const adopted = await this.options.adoptTuf();
      if (!adopted.ok) {
        await this.reports.report(u.id, 'failed', { error: adopted.reason });
        return undefined;
      }
      adoption = adopted.value;
    }
    // Before anything is downloaded: a release the TUF targets do not sign is refused at once.
    const signed = await this.checkSigned(verdict.value, undefined, adoption?.verifier ?? this.tuf).catch(
      async (e: unknown) => {
        await adoption?.drop();
        throw e;
      },
    );
    if (!signed.ok) {
      await adoption?.drop();
      await this.reports.report(u.id, 'failed', { error: signed.reason });
      return undefined;
    }
    if (adoption) {
      // TUF, from the root the pinned key vouched for, verified this release: it is the trust anchor now.
      await adoption.keep();
      this.tuf = adoption.verifier;
      this.log.info('adopted the TUF root signed for migration', { update: u.id });
    }
    const slot = await this.slots.inactive();
    const holding = await this.slotHolds(slot, verdict.value);
    if (u.action === 'switch' && holding === 'nothing') {
      await this.reports.report(u.id, 'failed', {
        error: `release ${verdict.value.version} is not staged`,
      });
      return undefined;
    }
    if (holding === 'nothing') await this.slots.prepare(slot);
    const job: JobRecord = {
      id: u.id,
      ...(u.rollout_id !== null ? { rollout_id: u.rollout_id } : {}),
      action: u.action,
      manifest: u.manifest,
      signature: u.signature,
      download_url: u.download_url,
      ...(u.delta && this.options.deltas !== false ? { delta: u.delta } : {}),
    };
    await this.state.writeJob(job);
    this.log.info('update started', {
      update: u.id,
      action: u.action,
      version: verdict.value.version,
      slot,
    });
    return job;
  }

  /** Each step is skipped when already done, so a restarted agent walks the same path to where it stopped. */
  private async runJob(job: JobRecord, entry: PendingUpdate): Promise<void> {
    const verdict = await this.verifyManifest(job.manifest, job.signature);
    if (!verdict.ok) return this.fail(job.id, verdict.reason);
    const m = verdict.value;
    const slot = await this.slots.inactive();
    let holding = await this.slotHolds(slot, m);
    if (holding === 'nothing' && entry.retry_after !== null)
      return this.hold(entry, entry.hold_reason ?? 'the server holds the download back');
    // Downloaded, then put back to pending (deferred, or outside its window): it waits, its download kept, until
    // the server grants it again.
    if (entry.state === 'pending' && entry.retry_after !== null)
      return this.hold(entry, entry.hold_reason ?? 'the server holds the update back');
    await this.reports.report(job.id, 'notified');
    if (holding === 'nothing') {
      const rate = entry.download_rate_limit;
      const file =
        (await this.fetchByDelta(job, m, slot, rate)) ?? (await this.fetchArtifact(job, m, slot, rate));
      const check = verifyArtifact(m, file);
      if (!check.ok) return this.fail(job.id, check.reason);
      const signed = await this.checkSigned(m, file);
      if (!signed.ok) return this.fail(job.id, signed.reason);
      await this.slots.markStaged(slot, m);
      holding = 'staged';
    }
    if (job.action === 'download_only') {
      // Staging was the whole job: it succeeded. A switch to the staged release comes as its own update.
      await this.reports.report(job.id, 'succeeded');
      this.log.info('release staged; waiting for a switch', { update: job.id, version: m.version, slot });
      return this.state.clearJob();
    }
    if (entry.soft && this.options.consent && !(await this.consents(entry, m))) return;
    await this.deps.beforeInstall?.();
    await this.reports.report(job.id, 'installing');
    if (holding === 'staged') {
      const installed = await this.slots.install(slot, {
        manifest: m,
        record: { ...m, update_id: job.id, manifest: job.manifest, signature: job.signature },
        installedAt: new Date(this.clock.now()).toISOString(),
        scriptTimeoutMs: this.stepTimeoutMs(),
        signal: this.deps.signal,
        hardwareType: this.options.hardwareType,
        ...(this.options.installers ? { config: this.options.installers } : {}),
      });
      if (!installed.ok) return this.fail(job.id, installed.reason);
    }
    await this.slots.beginTrial(slot, job.id, this.options.trialBoots);
    await this.options.onSwitch?.();
    this.log.info('switched; on trial', { update: job.id, slot });
    await this.verifyTrial(job.id);
  }

  /** The image repository's TUF targets, then the director's for this device: each, when provisioned. */
  private async checkSigned(
    m: Manifest,
    download?: { size: number; sha256: string },
    tuf = this.tuf,
  ): Promise<Verdict> {
    const images = (await tuf?.verify(m, download)) ?? { ok: true, value: undefined };
    if (!images.ok) return images;
    return (await this.options.director?.verify(m, download)) ?? images;
  }

  /**
   * Asks the consent hook about a soft update; false: it is held (deferred through the server, or asked again
   * later). Once the server refuses a deferral (409: budget spent), the update installs.
   */
  private async consents(entry: PendingUpdate, m: Manifest): Promise<boolean> {
    const answer = consentAnswer(
      await this.options.consent!({
        updateId: entry.id,
        rolloutId: entry.rollout_id,
        releaseName: m.name,
        releaseVersion: m.version,
      }),
    );
    if (answer.kind === 'install') return true;
    if (answer.kind === 'later') {
      this.hold(entry, 'the consent hook declined the install for now', CONSENT_RETRY_SEC);
      return false;
    }
    try {
      const deferred = await this.client.defer(entry.id, answer.for);
      if (deferred.kind === 'spent') {
        this.log.info('deferral refused: installing', { update: entry.id, reason: deferred.reason });
        return true;
      }
      const seconds = Math.max(1, Math.ceil((deferred.until - this.clock.now()) / 1000));
      this.hold(entry, `deferred by the consent hook (deferral ${deferred.count})`, seconds);
    } catch (e) {
      this.log.warn('could not defer the update; asking again later', {
        update: entry.id,
        error: (e as Error).message,
      });
      this.hold(entry, 'the deferral could not be made', CONSENT_RETRY_SEC);
    }
    return false;
  }

  private async verifyManifest(manifest: string, signature: string): Promise<Verdict<Manifest>> {
    const ctx = {
      publicKey: this.options.publicKey,
      hardwareType: this.options.hardwareType,
      installedVersion: await this.deps.firmwareVersion(),
    };
    const strict = verifyRelease(manifest, signature, ctx);
    if (strict.ok) return strict;
    // Going back to the release the other slot still holds is how a rollback works without a download:
    // that release was verified and ran on this device before, so anti-rollback does not apply to it.
    const loose = verifyRelease(manifest, signature, { ...ctx, installedVersion: undefined });
    if (!loose.ok) return strict;
    return (await this.slotHolds(await this.slots.inactive(), loose.value)) === 'installed' ? loose : strict;
  }

  /** Whether a slot already has this release installed, downloaded and verified, or neither. */
  private async slotHolds(slot: SlotName, m: Manifest): Promise<'installed' | 'staged' | 'nothing'> {
    if ((await this.slots.release(slot))?.sha256 === m.sha256) return 'installed';
    const staged = await this.slots.staged(slot);
    return staged?.sha256 === m.sha256 ? 'staged' : 'nothing';
  }

  /** The image rebuilt from the running one and the offered delta; undefined: download it whole. */
  private async fetchByDelta(job: JobRecord, m: Manifest, slot: SlotName, rateLimit: number | undefined) {
    const delta = job.delta;
    if (!delta) return undefined;
    const running = await this.slots.release(other(slot));
    const source =
      // an extracted payload (archive, bundle) is a directory, not the image a delta was built from
      running && !EXTRACTED_TYPES.includes(running.type) && running.type !== 'script'
        ? { path: join(this.slots.dir(other(slot)), 'payload'), sha256: running.sha256 }
        : undefined;
    const downloadDir = join(this.slots.dir(slot), '.download');
    await mkdir(downloadDir, { recursive: true });
    let outcome: Verdict<{ size: number; sha256: string }>;
    try {
      outcome = await updateByDelta({
        delta,
        manifest: m,
        publicKey: this.options.publicKey,
        source,
        downloadDir,
        url: this.client.url(delta.url),
        fetch: this.client.fetchFn,
        headers: this.client.authHeaders(),
        signal: this.deps.signal,
        rateLimit,
        pacing: this.options.downloadPacing,
      });
    } catch (e) {
      if (this.deps.signal.aborted) throw e;
      outcome = { ok: false, reason: (e as Error).message };
    }
    if (outcome.ok) {
      this.log.info('update rebuilt from a delta', {
        update: job.id,
        delta_bytes: delta.size,
        image_bytes: m.size,
      });
      return outcome.value;
    }
    this.log.warn('delta not used; downloading the full image', { update: job.id, reason: outcome.reason });
    delete job.delta;
    await this.state.writeJob(job); // a restart does not try the same delta again
    return undefined;
  }

  private async fetchArtifact(job: JobRecord, m: Manifest, slot: SlotName, rateLimit: number | undefined) {
    let reported = -1;
    return this.slots.receive(slot, {
      url: this.client.url(job.download_url),
      rateLimit,
      pacing: this.options.downloadPacing,
      fetch: this.client.fetchFn,
      headers: this.client.authHeadersFor(this.client.url(job.download_url)),
      signal: this.deps.signal,
      onProgress: async (done, total) => {
        const of = total ?? m.size;
        const percent = of > 0 ? Math.min(100, Math.floor((done * 100) / of)) : 100;
        if (reported >= 0 && Math.floor(percent / 10) <= Math.floor(reported / 10)) return;
        reported = percent; // every ~10 %
        await this.reports.report(job.id, 'downloading', { progress: percent });
      },
    });
  }

  /** The switched-to slot runs: health check, then commit, or back to the previous slot. */
  private async verifyTrial(updateId: string): Promise<void> {
    await this.reports.report(updateId, 'verifying');
    let health = await this.checkHealth();
    if (health.ok && this.options.appHealth) health = await this.options.appHealth();
    // Only a healthy release is marked good (RAUC); a refusal to mark it is a failed trial.
    if (health.ok) health = await this.settleTrial('commit');
    if (health.ok) {
      await this.reports.report(updateId, 'succeeded');
      await this.commit();
      this.log.info('update succeeded', { update: updateId, version: await this.deps.firmwareVersion() });
    } else {
      await this.reports.report(updateId, 'rolled_back', { error: health.reason });
      await this.rollback();
      this.log.warn('update rolled back', { update: updateId, reason: health.reason });
    }
  }

  private checkHealth(): Promise<Verdict> {
    const health = this.options.health;
    if (health === undefined) return Promise.resolve({ ok: true, value: undefined });
    if (typeof health === 'function') return health();
    return checkHealth(health, {
      deadlineMs: this.options.healthDeadlineMs ?? 60_000,
      ...(this.options.healthIntervalMs !== undefined ? { intervalMs: this.options.healthIntervalMs } : {}),
      clock: this.clock,
      ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
      cwd: this.state.path('current'),
    });
  }

  private async commit(): Promise<void> {
    await this.slots.commit();
    await this.state.clearJob();
  }

  private stepTimeoutMs(): number {
    return this.options.scriptTimeoutMs ?? 300_000;
  }

  /** The handlers' part of ending the trial; the slot switch stays the agent's. */
  private async settleTrial(stage: 'commit' | 'rollback'): Promise<Verdict> {
    const trial = await this.slots.trial();
    if (!trial) return { ok: true, value: undefined };
    const outcome = await this.slots.settle(stage, trial, {
      ...(this.options.installers ? { config: this.options.installers } : {}),
      timeoutMs: this.stepTimeoutMs(),
      signal: this.deps.signal,
    });
    if (!outcome.ok)
      this.log.warn(`installer ${stage} failed`, { update: trial.update_id, reason: outcome.reason });
    return outcome;
  }

  private async rollback(): Promise<void> {
    await this.settleTrial('rollback'); // a failure is logged; going back to the previous slot still happens
    const slot = await this.slots.rollback();
    await this.options.onSwitch?.();
    await this.state.clearJob();
    this.log.info('back on the previous slot', { slot });
  }

  /** Reports the failure, then discards what was downloaded; the active slot was never touched. */
  private async fail(updateId: string, reason: string): Promise<void> {
    this.log.warn('update failed', { update: updateId, reason });
    await this.reports.report(updateId, 'failed', { error: reason }).catch((e) => {
      if (!(e instanceof Cancelled)) throw e;
    });
    const job = await this.state.readJob();
    if (job?.id === updateId) {
      await this.slots.prepare(await this.slots.inactive());
      await this.state.clearJob();
    }
  }

  private async cancelJob(updateId: string): Promise<void> {
    this.log.info('update cancelled by the server; stopping', { update: updateId });
    await this.reports.forget(updateId);
    const trial = await this.slots.trial();
    if (trial?.update_id === updateId) return this.rollback(); // never leave an unverified release running
    const job = await this.state.readJob();
    if (job?.id === updateId) await this.dropJob(job, 'cancelled');
  }

  /** Gives up an update not yet switched to, discarding what was downloaded for it. */
  private async dropJob(job: JobRecord, why: string): Promise<void> {
    this.log.info('dropping update', { update: job.id, why });
    await this.slots.prepare(await this.slots.inactive());
    await this.state.clearJob();
  }
}
