/**
 * The fleet simulator: the real FleetD server (VirtualFleet: store, routes, engine, sweeper on a manual
 * clock) and a simulated fleet that speaks the device protocol to it, driven event by event in virtual
 * time. Nothing in the server knows it is simulated.
 *
 * Event-driven: a device acts only when it matters — when it connects while it has (or may have) an update
 * to take, when a held update is due again (the retry_after the server gave), when a download slot frees
 * in its rollout (devices turned away for want of a slot queue on the device side and are woken one per
 * freed slot, instead of asking every few minutes), and when its own work moves on. Idle devices do not
 * heartbeat every 5 minutes: their last_seen is brought up to date ("sync": a real heartbeat of every
 * online device that has not sent one for 5 minutes, then a status sweep) whenever the server reads it —
 * before a rollout is planned, at each phase start (the ETA), and every `sync_every`.
 */

import type { StateCounts } from '../core/rollout/counts.js';
import { holdFor } from '../core/rollout/offer.js';
import { isInWindow, windowZone } from '../core/rollout/window.js';
import { purposeCounts } from '../engine/counts.js';
import { rolloutProgress } from '../engine/progress.js';
import type { Rollout, TimeContext } from '../store/store.js';
import { draw } from './distribution.js';
import { EventQueue } from './event-queue.js';
import { FleetModel } from './fleet-model.js';
import { deviceSecret, type Gateway, httpGateway, secretHash, storeGateway } from './gateway.js';
import { OUTCOME, RolloutObservation } from './observer.js';
import type { PendingUpdateJson } from './protocol-device.js';
import { textSalt, uniform } from './random.js';
import type { Scenario } from './scenario.js';
import { VirtualFleet } from './virtual-fleet.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** Share of an update's time spent downloading (the rest installs, offline or not). */
const DOWNLOAD_SHARE = 0.7;
/** A heartbeat younger than this is fresh enough for the server's online/offline view (threshold 10 min). */
const FRESH_MS = 5 * MINUTE;
const REGISTER_CHUNK = 20_000;

const POLL = 0;
const STEP = 1;

interface Work {
  updateId: string;
  rollout: number;
  version: string;
  action: string;
  seq: number;
  /** 0 downloading, 1 installing, 2 done (reports waiting for a connection). */
  step: number;
  downloadLeftMs: number;
  installMs: number;
  fails: boolean;
  /** The instant the current step ends, while it runs. */
  stepEnds: number;
  /** Counted among the rollout's devices updating now (not while its download waits for a connection). */
  counted: boolean;
}

export interface SimStats {
  heartbeats: number;
  reports: number;
  engineTicks: number;
  syncs: number;
  wallMs: number;
  setupMs: number;
  peakRssBytes: number;
  deviceDaysPerSecond: number;
}

export interface SimOutcome {
  scenario: Scenario;
  devices: number;
  observations: RolloutObservation[];
  rollouts: Rollout[];
  stats: SimStats;
  end: number;
}

export interface SimOptions {
  /** Called with a line of progress now and then. */
  progress?: (line: string) => void;
  dataDir?: string;
}

export class Simulator {
  private fleet!: VirtualFleet;
  private gateway!: Gateway;
  private readonly model: FleetModel;
  private readonly queue = new EventQueue();
  private readonly gen: Uint32Array;
  /** Bit 0: has (or may have) an open update. */
  private readonly interest: Uint8Array;
  private readonly inQueue: Uint8Array;
  private readonly work = new Map<number, Work>();
  private readonly lastGrant = new Map<number, string>();
  private readonly failures = new Map<number, number>();
  private readonly obs: RolloutObservation[] = [];
  private readonly rollouts: Array<Rollout | undefined> = [];
  private readonly byId = new Map<string, number>();
  private readonly stats: SimStats = {
    heartbeats: 0,
    reports: 0,
    engineTicks: 0,
    syncs: 0,
    wallMs: 0,
    setupMs: 0,
    peakRssBytes: 0,
    deviceDaysPerSecond: 0,
  };
  private lastTick = Number.NEGATIVE_INFINITY;
  private dirty = false;
  private nextWake: number[] = [];

  constructor(
    readonly scenario: Scenario,
    private readonly options: SimOptions = {},
  ) {
    this.model = new FleetModel(scenario);
    this.gen = new Uint32Array(this.model.size);
    this.interest = new Uint8Array(this.model.size);
    this.inQueue = new Uint8Array(this.model.size);
  }

  private get now(): number {
    return this.fleet.now;
  }

  private ctx(): TimeContext {
    return { now: this.now, thresholds: this.fleet.parts.thresholds };
  }

  private log(line: string): void {
    this.options.progress?.(line);
  }

  private sampleRss(): void {
    const rss = process.memoryUsage().rss;
    if (rss > this.stats.peakRssBytes) this.stats.peakRssBytes = rss;
  }

  async run(): Promise<SimOutcome> {
    const wallStart = performance.now();
    const s = this.scenario;
    this.fleet = await VirtualFleet.create({
      start: s.start,
      ...(this.options.dataDir ? { dataDir: this.options.dataDir } : {}),
    });
    try {
      const parts = () => this.fleet.parts;
      this.gateway = s.simulation.layer === 'http' ? httpGateway(parts, s.seed) : storeGateway(parts, s.seed);
      await this.register();
      this.stats.setupMs = performance.now() - wallStart;
      await this.loop();
      this.stats.wallMs = performance.now() - wallStart;
      this.sampleRss();
      const days = (this.model.size * s.durationMs) / (24 * HOUR);
      this.stats.deviceDaysPerSecond = days / (this.stats.wallMs / 1000);
      const rollouts = this.rollouts.filter((r): r is Rollout => r !== undefined);
      return {
        scenario: s,
        devices: this.model.size,
        observations: this.obs,
        rollouts,
        stats: this.stats,
        end: this.now,
      };
    } finally {
      await this.fleet.close();
    }
  }

  /** Registers the fleet (bulk import), gives every device its credential, uploads the releases. */
  private async register(): Promise<void> {
    const store = this.fleet.parts.store;
    for (let from = 0; from < this.model.size; from += REGISTER_CHUNK) {
      const to = Math.min(this.model.size, from + REGISTER_CHUNK);
      const records = [];
      const credentials = [];
      for (let i = from; i < to; i++) {
        const r = this.model.record(i);
        records.push(r);
        credentials.push({ id: r.id, credentialHash: secretHash(deviceSecret(this.scenario.seed, r.id)) });
      }
      await store.importDevices(records, this.ctx(), 'simulator');
      await store.setCredentials(credentials, this.ctx(), 'simulator');
      this.log(`registered ${to.toLocaleString('en-US')} devices`);
    }
    const hardware = [...new Set(this.scenario.fleet.map((g) => g.hardwareType))];
    const made = new Set<string>();
    for (const r of this.scenario.rollouts) {
      const key = r.spec.release;
      if (made.has(key)) continue;
      made.add(key);
      const exists = await store.releases.get(r.spec.releaseName, r.spec.releaseVersion);
      if (!exists)
        await this.fleet.release(r.spec.releaseName, r.spec.releaseVersion, r.releaseHardware ?? hardware);
    }
  }

  // ── the loop ──────────────────────────────────────────────────────────────────────────────────────

  private async loop(): Promise<void> {
    const s = this.scenario;
    const end = s.start + s.durationMs;
    const pending = { rollouts: 0, actions: 0, faults: 0 };
    let nextHour = s.start;
    let nextSync = s.simulation.syncEveryMs === null ? Number.POSITIVE_INFINITY : s.start;
    const out: [number, number, number] = [0, 0, 0];
    let lastLog = performance.now();
    for (;;) {
      const tickAt = this.nextTickAt();
      const globalAt = Math.min(
        s.rollouts[pending.rollouts]?.at ?? Number.POSITIVE_INFINITY,
        s.actions[pending.actions]?.at ?? Number.POSITIVE_INFINITY,
        s.faults[pending.faults]?.at ?? Number.POSITIVE_INFINITY,
        nextHour,
        nextSync,
        tickAt,
      );
      const at = Math.min(globalAt, this.queue.peekTime());
      if (at > end) break;
      this.advanceTo(at);
      if (globalAt <= at) {
        if (s.faults[pending.faults]?.at === at) await this.fault(pending.faults++);
        else if (s.rollouts[pending.rollouts]?.at === at) await this.createRollout(pending.rollouts++);
        else if (s.actions[pending.actions]?.at === at) await this.action(pending.actions++);
        else if (nextSync === at) {
          await this.sync();
          nextSync += s.simulation.syncEveryMs!;
        } else if (nextHour === at) {
          await this.sample();
          nextHour += HOUR;
        } else await this.tick();
        continue;
      }
      // Device events due now: heartbeats in one batch (as the server's group commit takes them), then steps.
      const polls: number[] = [];
      const steps: number[] = [];
      while (this.queue.peekTime() <= at) {
        this.queue.pop(out);
        const [, i, meta] = out;
        if (meta >>> 1 !== this.gen[i]) continue;
        if ((meta & 1) === POLL) polls.push(i);
        else steps.push(i);
      }
      for (const i of steps) await this.step(i);
      if (polls.length > 0) await this.heartbeat(polls.filter((i) => this.model.isOnline(i, this.now)));
      for (const i of polls) if (!this.model.isOnline(i, this.now)) this.scheduleConnect(i);
      if (performance.now() - lastLog > 5_000) {
        lastLog = performance.now();
        this.sampleRss();
        this.log(
          `${new Date(this.now).toISOString()}  ${this.stats.heartbeats.toLocaleString('en-US')} heartbeats, ${this.stats.reports.toLocaleString('en-US')} reports`,
        );
      }
    }
    this.advanceTo(end);
    await this.tick();
    await this.sample();
    for (let k = 0; k < this.obs.length; k++) {
      const r = await this.fleet.parts.store.rollouts.get(this.obs[k]!.id);
      this.rollouts[k] = r;
      if (r) this.obs[k]!.gates = r.gates;
    }
  }

  private advanceTo(at: number): void {
    if (at > this.now) this.fleet.advance(at - this.now);
  }

  private schedule(i: number, at: number, kind: number): void {
    this.gen[i] = (this.gen[i]! + 1) & 0x7fffffff;
    this.queue.push(at, i, (this.gen[i]! << 1) | kind);
  }

  /** An interested device that is offline acts when it next connects. */
  private scheduleConnect(i: number): void {
    if (!this.interest[i] && !this.work.has(i)) return;
    const next = this.model.nextOnline(i, this.now);
    if (Number.isFinite(next)) this.schedule(i, Math.max(next, this.now + 1), POLL);
  }

  private nextTickAt(): number {
    if (!this.obs.some((_, k) => this.isOpen(k))) return Number.POSITIVE_INFINITY;
    const every = this.scenario.simulation.engineEveryMs;
    const due = this.lastTick + (this.dirty ? every : Math.max(every, HOUR));
    return Math.max(this.now, Math.min(due, ...this.nextWake));
  }

  private isOpen(k: number): boolean {
    const r = this.rollouts[k];
    return r !== undefined && ['scheduled', 'running', 'paused', 'halted'].includes(r.state);
  }

  // ── server-side moments ──────────────────────────────────────────────────────────────────────────

  private async createRollout(n: number): Promise<void> {
    const r = this.scenario.rollouts[n]!;
    await this.sync();
    const created = await this.fleet.api<{ id: string }>('POST', '/api/v1/rollouts', r.body);
    const k = this.obs.length;
    const o = new RolloutObservation(r.spec.name, created.id, this.model.size);
    this.obs.push(o);
    this.byId.set(created.id, k);
    this.rollouts[k] = await this.fleet.parts.store.rollouts.get(created.id);
    this.log(`${new Date(this.now).toISOString()}  rollout ${r.spec.name} created (${created.id})`);
    await this.learnTargets(k, true);
    this.lastTick = Number.NEGATIVE_INFINITY;
    await this.recordEta(k);
  }

  /** Devices with a waiting update in rollout k become interested; those online ask soon. */
  private async learnTargets(k: number, first: boolean): Promise<void> {
    const o = this.obs[k]!;
    const release = this.rollouts[k]!.release;
    const { devices } = await this.fleet.parts.store.rollouts.waitingDevices(o.id, this.model.size * 4);
    for (const d of devices) {
      const i = this.indexOf(d.deviceId);
      if (i < 0) continue;
      if (first || o.phase[i] === -1) {
        o.phase[i] = d.phase;
        o.failureP[i] = this.model.failureProbability(i, release);
      }
      if (this.work.has(i)) continue;
      this.interest[i] = 1;
      if (this.model.isOnline(i, this.now)) {
        const hb = this.model.heartbeatMs(i);
        this.schedule(
          i,
          this.now + 1 + Math.floor(uniform(this.scenario.seed, i, this.now % 1e9) * hb),
          POLL,
        );
      } else this.scheduleConnect(i);
    }
  }

  private readonly ids = new Map<string, number>();
  private indexOf(id: string): number {
    if (this.ids.size === 0) for (let i = 0; i < this.model.size; i++) this.ids.set(this.model.id(i), i);
    return this.ids.get(id) ?? -1;
  }

  private async action(n: number): Promise<void> {
    const a = this.scenario.actions[n]!;
    const k = this.obs.findIndex((o) => o.name === a.rollout);
    if (k < 0) {
      this.log(`action ${a.action} on ${a.rollout}: the rollout was not created`);
      return;
    }
    try {
      await this.fleet.api('POST', `/api/v1/rollouts/${this.obs[k]!.id}/${a.action}`);
      this.log(`${new Date(this.now).toISOString()}  ${a.action} ${a.rollout}`);
    } catch (error) {
      this.log(
        `${new Date(this.now).toISOString()}  ${a.action} ${a.rollout} refused: ${(error as Error).message}`,
      );
    }
    await this.tick();
  }

  private async fault(n: number): Promise<void> {
    const f = this.scenario.faults[n]!;
    if (f.kind === 'server_restart') {
      await this.fleet.restart();
      this.log(`${new Date(this.now).toISOString()}  server restarted`);
      return;
    }
    let dropped = 0;
    for (const [i, w] of this.work) {
      if (w.step !== 0 || uniform(this.scenario.seed, i, n, 0xd) >= f.share) continue;
      this.model.droppedUntil.set(i, this.now + f.durationMs);
      this.pauseDownload(i, w);
      dropped++;
    }
    this.log(`${new Date(this.now).toISOString()}  network drop: ${dropped} downloads interrupted`);
  }

  /** One engine pass; then what changed in each rollout (a phase, a state) reaches the devices. */
  private async tick(): Promise<void> {
    this.lastTick = this.now;
    this.dirty = false;
    this.stats.engineTicks++;
    await this.fleet.parts.engine.tick();
    this.nextWake = [];
    for (let k = 0; k < this.obs.length; k++) {
      const before = this.rollouts[k];
      if (!before) continue;
      const r = await this.fleet.parts.store.rollouts.get(before.id);
      if (!r) continue;
      this.rollouts[k] = r;
      const phaseStarted =
        r.currentPhase !== before.currentPhase || (r.state === 'running' && before.state !== 'running');
      const followUps = r.state === 'rolled_back' && before.state !== 'rolled_back';
      if (phaseStarted || followUps || (r.spec.strategy === 'blue_green' && r.currentPhase === 1)) {
        await this.learnTargets(k, false);
        if (r.currentPhase !== before.currentPhase) await this.recordEta(k);
      }
      if (r.state === 'running') {
        const p = r.spec.phases[r.currentPhase];
        const soakEnd = (r.phaseStarts[r.currentPhase] ?? this.now) + (p?.waitMs ?? 0);
        if (soakEnd > this.now) this.nextWake.push(soakEnd + 1);
        this.wake(k, Math.max(0, r.spec.maxConcurrent - this.obs[k]!.active));
      }
    }
  }

  /** Brings last_seen up to date: every online device not heard from for FRESH_MS heartbeats; then a sweep. */
  private async sync(): Promise<void> {
    this.stats.syncs++;
    const due: number[] = [];
    for (let i = 0; i < this.model.size; i++) {
      if (this.now - this.model.lastBeat[i]! >= FRESH_MS && this.model.isOnline(i, this.now)) due.push(i);
    }
    for (let from = 0; from < due.length; from += 1000) await this.heartbeat(due.slice(from, from + 1000));
    await this.fleet.parts.sweeper.sweep();
  }

  private async recordEta(k: number): Promise<void> {
    const r = this.rollouts[k];
    if (!r || (r.state !== 'running' && r.state !== 'scheduled')) return;
    await this.sync();
    const progress = await rolloutProgress(this.fleet.parts.store, r, this.ctx());
    this.obs[k]!.eta.push({
      phase: r.currentPhase,
      at: this.now,
      predictedFinish: progress.eta?.finishAt ?? null,
      unknownDevices: progress.eta?.unknownDevices ?? 0,
    });
  }

  /** The hourly timeline: counts by state of each rollout, as the server has them. */
  private async sample(): Promise<void> {
    this.sampleRss();
    for (const o of this.obs) {
      const counts: StateCounts = purposeCounts(await this.fleet.parts.store.rollouts.counts(o.id), 'update');
      o.timeline.push({ at: this.now, counts });
    }
  }

  // ── the devices ──────────────────────────────────────────────────────────────────────────────────

  /** Wakes up to `n` devices queued for a slot in rollout k (the online ones ask now). */
  private wake(k: number, n: number): void {
    const o = this.obs[k]!;
    let woken = 0;
    while (woken < n && o.queueHead < o.queue.length) {
      const i = o.queue[o.queueHead++]!;
      this.inQueue[i] = 0;
      if (this.work.has(i)) continue;
      if (this.model.isOnline(i, this.now)) {
        this.schedule(i, this.now, POLL);
        woken++;
      } else this.scheduleConnect(i);
    }
    if (o.queueHead > 4096 && o.queueHead * 2 > o.queue.length) {
      o.queue.splice(0, o.queueHead);
      o.queueHead = 0;
    }
  }

  private async heartbeat(devices: number[]): Promise<void> {
    if (devices.length === 0) return;
    const answers = await this.gateway.heartbeats(
      devices.map((i) => ({ id: this.model.id(i), firmware: this.model.firmwareOf(i) })),
    );
    this.stats.heartbeats += devices.length;
    for (let n = 0; n < devices.length; n++) {
      const i = devices[n]!;
      this.model.lastBeat[i] = this.now;
      await this.answer(i, answers[n] ?? []);
    }
  }

  /** What a device does with the updates a heartbeat lists. */
  private async answer(i: number, updates: PendingUpdateJson[]): Promise<void> {
    const current = this.work.get(i);
    if (current) {
      const listed = updates.find((u) => u.id === current.updateId);
      if (!listed || !['notified', 'downloading', 'installing', 'verifying'].includes(listed.state)) {
        // The server gave up on it (timed out, cancelled) while the device was away: it lets it go.
        this.endWork(i, current, null);
      } else if (current.step === 0 && current.stepEnds === 0) {
        this.count(current, true);
        this.resumeDownload(i, current);
        return;
      } else if (current.step === 2) {
        await this.finish(i, current, current.fails ? 'failed' : 'succeeded');
        return;
      } else return;
    }
    let held: PendingUpdateJson | undefined;
    for (const u of updates) {
      const k = u.rollout_id === null ? -1 : (this.byId.get(u.rollout_id) ?? -1);
      if (u.state === 'notified' && u.retry_after === null) {
        if (this.work.has(i)) {
          this.doubleOffer(k, `${this.model.id(i)} granted ${u.id} while busy with another update`);
          continue;
        }
        await this.start(i, u, k);
      } else if (u.retry_after !== null && !held) held = u;
    }
    if (this.work.has(i)) return;
    if (!held) {
      // Nothing to do now. A device in a later phase keeps its interest until its phase starts.
      const waitingLater = this.obs.some(
        (o, k) => o.phase[i]! > (this.rollouts[k]?.currentPhase ?? 0) && o.outcome[i] === OUTCOME.none,
      );
      const failedAt = this.failures.get(i);
      const retrying =
        failedAt !== undefined && this.now - failedAt < 2 * this.scenario.simulation.engineEveryMs + HOUR;
      this.interest[i] = waitingLater || retrying ? 1 : 0;
      // A failed update comes back (pending) at the engine's next pass: ask again after it.
      if (retrying) this.schedule(i, this.now + this.scenario.simulation.engineEveryMs, POLL);
      return;
    }
    this.interest[i] = 1;
    const k = held.rollout_id === null ? -1 : (this.byId.get(held.rollout_id) ?? -1);
    if (k >= 0 && this.waitsForSlot(k, i)) {
      if (!this.inQueue[i]) {
        this.inQueue[i] = 1;
        this.obs[k]!.queue.push(i);
      }
      return;
    }
    this.schedule(i, this.now + Math.max(1, held.retry_after!) * 1000, POLL);
  }

  /** True when nothing but a free slot holds the device (its window, phase and backoff allow it now). */
  private waitsForSlot(k: number, i: number): boolean {
    const r = this.rollouts[k];
    if (!r || r.spec.rate !== null) return false;
    const failedAt = this.failures.get(i);
    const hold = holdFor({
      rollout: r,
      update: {
        phase: Math.max(0, this.obs[k]!.phase[i]!),
        notBefore: failedAt === undefined ? null : failedAt + r.spec.retry.maxBackoffMs,
        purpose: 'update',
      },
      deviceZone: this.model.zoneOf(i),
      now: this.now,
    });
    return hold === null;
  }

  private doubleOffer(k: number, why: string): void {
    const o = this.obs[k];
    if (!o) return;
    o.doubleOffers++;
    if (o.doubleOfferExamples.length < 5) o.doubleOfferExamples.push(why);
  }

  private async start(i: number, u: PendingUpdateJson, k: number): Promise<void> {
    const o = this.obs[k];
    const version = (JSON.parse(u.manifest) as { version: string }).version;
    const id = this.model.id(i);
    if (o) {
      if (this.lastGrant.get(i) === u.id && !this.failures.has(i))
        this.doubleOffer(k, `${id} granted ${u.id} twice`);
      if (o.outcome[i] === OUTCOME.succeeded && u.action !== 'switch')
        this.doubleOffer(k, `${id} granted ${this.obs[k]!.name} again after it succeeded`);
      const r = this.rollouts[k];
      if (r?.spec.window && u.action !== 'switch') {
        const zone = windowZone(r.spec.window, this.model.zoneOf(i));
        if (!isInWindow(r.spec.window, zone, this.now)) {
          o.outsideWindow++;
          if (o.outsideWindowExamples.length < 5)
            o.outsideWindowExamples.push(`${id} at ${new Date(this.now).toISOString()} (${zone})`);
        }
      }
      o.started();
    }
    this.lastGrant.set(i, u.id);
    this.failures.delete(i);
    const g = this.model.groupOf(i);
    const attempt = this.obs[k]?.grants ?? 0;
    const seconds = draw(
      g.installSeconds,
      uniform(this.scenario.seed, i, attempt, 0x51),
      uniform(this.scenario.seed, i, attempt, 0x52),
    );
    const total = seconds * 1000;
    const release = this.rollouts[k]?.release ?? '';
    const fails =
      u.action !== 'switch' &&
      uniform(this.scenario.seed, i, textSalt(release), 0xfa) < this.model.failureProbability(i, release);
    const w: Work = {
      updateId: u.id,
      rollout: k,
      version,
      action: u.action,
      seq: u.last_seq,
      step: u.action === 'switch' ? 1 : 0,
      downloadLeftMs: u.action === 'switch' ? 0 : total * DOWNLOAD_SHARE,
      installMs: u.action === 'switch' ? 10_000 : total * (1 - DOWNLOAD_SHARE),
      fails,
      stepEnds: 0,
      counted: true,
    };
    this.work.set(i, w);
    this.interest[i] = 1;
    this.dirty = true;
    if (w.step === 0) {
      await this.send(i, w, { state: 'downloading', progress: 0 });
      this.resumeDownload(i, w);
    } else {
      await this.send(i, w, { state: 'installing' });
      w.stepEnds = this.now + w.installMs;
      this.schedule(i, w.stepEnds, STEP);
    }
  }

  /** Downloads while the device is online: to the end, or to the end of its session (then it waits). */
  private resumeDownload(i: number, w: Work): void {
    const sessionEnd = this.model.sessionEnd(i, this.now);
    const until = Math.min(this.now + w.downloadLeftMs, sessionEnd);
    w.stepEnds = until;
    this.schedule(i, until, STEP);
  }

  private pauseDownload(i: number, w: Work): void {
    w.downloadLeftMs = Math.max(0, w.stepEnds - this.now);
    w.stepEnds = 0;
    this.count(w, false);
    this.scheduleConnect(i);
  }

  /** Device-side concurrency: a device counts while it downloads or installs, not while it waits offline. */
  private count(w: Work, on: boolean): void {
    const o = this.obs[w.rollout];
    if (!o || w.counted === on) return;
    w.counted = on;
    o.active += on ? 1 : -1;
    if (o.active > o.peakActive) o.peakActive = o.active;
  }

  private async step(i: number): Promise<void> {
    const w = this.work.get(i);
    if (!w) return;
    if (w.step === 0) {
      const left = w.stepEnds - this.now;
      w.downloadLeftMs = Math.max(0, left);
      if (
        !this.model.isOnline(i, this.now) ||
        (w.downloadLeftMs > 0 && this.now >= this.model.sessionEnd(i, this.now))
      ) {
        // The connection went mid-download: it resumes when the device is back (and asks the server first).
        this.pauseDownload(i, w);
        return;
      }
      if (w.downloadLeftMs > 1) {
        this.resumeDownload(i, w);
        return;
      }
      w.step = 1;
      if (w.action === 'download_only' && !w.fails) {
        await this.finish(i, w, 'succeeded');
        return;
      }
      if (w.fails && w.action === 'download_only') {
        await this.finish(i, w, 'failed');
        return;
      }
      if (!(await this.send(i, w, { state: 'installing' }))) return;
      w.stepEnds = this.now + w.installMs;
      this.schedule(i, w.stepEnds, STEP);
      return;
    }
    if (!this.model.isOnline(i, this.now)) {
      // Installed offline: the reports wait in the device's outbox for the next connection.
      w.step = 2;
      this.count(w, false);
      this.scheduleConnect(i);
      return;
    }
    await this.finish(i, w, w.fails ? 'failed' : 'succeeded');
  }

  private async finish(i: number, w: Work, state: 'succeeded' | 'failed'): Promise<void> {
    if (state === 'succeeded' && w.action !== 'download_only') {
      if (!(await this.send(i, w, { state: 'verifying' }))) return;
    }
    const ok = await this.send(i, w, state === 'failed' ? { state, error: 'simulated failure' } : { state });
    if (!ok) return;
    if (state === 'succeeded' && w.action !== 'download_only')
      this.model.firmware[i] = this.model.version(w.version);
    this.endWork(i, w, state);
    // A failed update may be retried, a staged one switched: the device asks again after the engine's next pass.
    const r = this.rollouts[w.rollout];
    if (state === 'failed' || r?.spec.strategy === 'blue_green' || this.obs.length > 1) {
      this.schedule(i, this.now + this.scenario.simulation.engineEveryMs, POLL);
    } else this.interest[i] = 0;
  }

  private endWork(i: number, w: Work, state: 'succeeded' | 'failed' | null): void {
    this.work.delete(i);
    this.dirty = true;
    const o = this.obs[w.rollout];
    this.count(w, false);
    if (o) {
      if (state !== null && w.action !== 'switch') {
        o.outcome[i] = state === 'succeeded' ? OUTCOME.succeeded : OUTCOME.failed;
        o.finishedAt[i] = this.now;
      }
      this.wake(w.rollout, 1);
    }
    // A failure, or the server giving up on it (timed out, cancelled): a later grant of it is a retry.
    if (state !== 'succeeded') this.failures.set(i, this.now);
  }

  /** One report; a refusal means the server is done with the update: the device drops it. */
  private async send(
    i: number,
    w: Work,
    body: {
      state: 'downloading' | 'installing' | 'verifying' | 'succeeded' | 'failed';
      progress?: number;
      error?: string;
    },
  ): Promise<boolean> {
    w.seq++;
    this.stats.reports++;
    const ok = await this.gateway.report(this.model.id(i), w.updateId, { seq: w.seq, ...body });
    if (!ok) this.endWork(i, w, null);
    return ok;
  }
}
