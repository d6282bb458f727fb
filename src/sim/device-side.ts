/**
 * The simulated devices: what each does with the server's answers and with its own work. A device takes an
 * update when the server grants it, downloads while it is online (pausing when its connection goes and
 * resuming when it is back), installs, and reports each step with increasing sequence numbers; reports made
 * offline wait for the next connection. A device held back does not ask every few minutes: it waits for a
 * freed slot in its rollout (queued on the device side, woken one per freed slot), for its window to open,
 * for its phase to start, or for its next connection — the moments the answer could change.
 *
 * Everything a device does within one step of simulated time reaches the server together: heartbeats through
 * the server's heartbeat group commit, reports through its report group commit, as a busy server takes them.
 * Over 500 lines because it is one state machine (connection, download, install, report queue) whose steps
 * schedule each other on one event queue.
 */
import { holdFor } from '../core/rollout/offer.js';
import { isInWindow, nextWindowStart, windowZone } from '../core/rollout/window.js';
import type { Rollout } from '../store/store.js';
import { draw } from './distribution.js';
import { EventQueue } from './event-queue.js';
import type { FleetModel } from './fleet-model.js';
import type { Gateway, ReportBody } from './gateway.js';
import { OUTCOME, type RolloutObservation } from './observer.js';
import type { Presence } from './presence.js';
import type { PendingUpdateJson } from './protocol-device.js';
import { hash32, textSalt, uniform } from './random.js';
import type { Scenario } from './scenario.js';

const MINUTE = 60_000;
/** Share of an update's time spent downloading (the rest installs, offline or not). */
const DOWNLOAD_SHARE = 0.7;
/** A heartbeat younger than this is fresh enough for the server's online/offline view (threshold 10 min). */
const FRESH_MS = 5 * MINUTE;
/** Devices per heartbeat batch when every online device heartbeats at once (a sync). */
const SYNC_CHUNK = 5_000;
const SWITCH_MS = 10_000;
/** Queued devices a freed slot looks through for one online before it waits for the first to connect. */
const WAKE_SCAN = 64;
const ACTIVE = new Set(['notified', 'downloading', 'installing', 'verifying']);

/** What an agenda entry asks of a device. */
const POLL = 0;
const STEP = 1;

/** Where a device is in its update. */
const DOWNLOADING = 0;
const INSTALLING = 1;
/** Installed while offline: the final reports wait for the next connection. */
const INSTALLED = 2;

interface Work {
  updateId: string;
  rollout: number;
  version: string;
  action: string;
  seq: number;
  step: number;
  downloadLeftMs: number;
  installMs: number;
  fails: boolean;
  /** The instant the current step ends, while it runs (0 while a download waits for a connection). */
  stepEnds: number;
  /** Counted among the rollout's devices updating now (not while its download waits for a connection). */
  counted: boolean;
  /** The device's value of the rollout's max_concurrent_per tag ('' without one); null: no such limit. */
  tagValue: string | null;
}

/** What the devices need of the simulation around them. */
export interface DeviceHost {
  readonly scenario: Scenario;
  readonly model: FleetModel;
  readonly presence: Presence;
  now(): number;
  /** The simulator's turn: orders what happens at one instant (see Simulator.moment). */
  moment(): number;
  gateway(): Gateway;
  /** The rollout the simulator created k-th, as the server last told it, and what is observed of it. */
  rollout(k: number): Rollout | undefined;
  observation(k: number): RolloutObservation | undefined;
  /** k of a rollout id; -1 for an update outside the scenario's rollouts. */
  rolloutIndex(id: string | null): number;
  rolloutCount(): number;
  /** Devices did something the engine should look at soon. */
  markBusy(): void;
  count(what: 'heartbeats' | 'reports', n: number): void;
}

export class DeviceSide {
  private readonly agenda = new EventQueue();
  /** Heartbeats a periodic sync owes devices offline at its instant, due when they connect (see `sync`). */
  private readonly syncAgenda = new EventQueue();
  private readonly gen: Uint32Array;
  /** Has (or may have) an open update: it acts when it connects. */
  private readonly interest: Uint8Array;
  /** Waits in a rollout's queue for a freed slot. */
  private readonly inQueue: Uint8Array;
  /** When the server last heard from the device. */
  readonly lastBeat: Float64Array;
  /** A hash of the update last granted to the device, to tell a second grant of the same one. */
  private readonly lastGrant: Uint32Array;
  /** When the device's last update failed or was given up (NaN: not since its last grant). */
  private readonly failedAt: Float64Array;
  private readonly work = new Map<number, Work>();
  private reports: Array<{ i: number; w: Work; body: ReportBody }> = [];

  constructor(private readonly host: DeviceHost) {
    const size = host.model.size;
    this.gen = new Uint32Array(size);
    this.interest = new Uint8Array(size);
    this.inQueue = new Uint8Array(size);
    this.lastBeat = new Float64Array(size).fill(Number.NEGATIVE_INFINITY);
    this.lastGrant = new Uint32Array(size);
    this.failedAt = new Float64Array(size).fill(Number.NaN);
  }

  private get now(): number {
    return this.host.now();
  }

  /** When the next device event is due (Infinity: none). */
  nextAt(): number {
    return Math.min(this.agenda.peekTime(), this.syncAgenda.peekTime());
  }

  /** Device i acts at `at`, rounded up to a whole millisecond (the server's clock never holds a fraction). */
  private schedule(i: number, at: number, kind: number): void {
    this.gen[i] = (this.gen[i]! + 1) & 0x7fffffff;
    this.agenda.push(Math.ceil(at), i, (this.gen[i]! << 1) | kind);
  }

  /** An interested device that is offline acts when it next connects. */
  private scheduleConnect(i: number): void {
    if (!this.interest[i] && !this.work.has(i)) return;
    const next = this.host.presence.nextOnline(i, this.now);
    if (Number.isFinite(next)) this.schedule(i, Math.max(next, this.now + 1), POLL);
  }

  /** Runs every device event due by now: work first, then heartbeats, each kind as one batch. */
  async runDue(): Promise<void> {
    const polls: number[] = [];
    const steps: number[] = [];
    const out: [number, number, number] = [0, 0, 0];
    while (this.agenda.peekTime() <= this.now) {
      this.agenda.pop(out);
      const [, i, meta] = out;
      if (meta >>> 1 !== this.gen[i]) continue;
      if ((meta & 1) === POLL) polls.push(i);
      else steps.push(i);
    }
    for (const i of steps) this.step(i);
    await this.flushReports();
    const online: number[] = [];
    for (const i of polls) {
      if (this.host.presence.isOnline(i, this.now)) online.push(i);
      else this.scheduleConnect(i);
    }
    // Heartbeats a sync owes (see `sync`), once per device and not beside a poll of its own.
    if (this.syncAgenda.peekTime() <= this.now) {
      const polled = new Set(online);
      while (this.syncAgenda.peekTime() <= this.now) {
        this.syncAgenda.pop(out);
        const i = out[1];
        if (polled.has(i) || this.now - this.lastBeat[i]! < FRESH_MS) continue;
        if (this.host.presence.isOnline(i, this.now)) online.push(i);
        polled.add(i);
      }
    }
    await this.heartbeat(online);
  }

  /**
   * Online devices the server has not heard from lately heartbeat (see the simulator's syncs): every one, or
   * with `onlyInvolved`, those with an update to take or at work (the only ones the server then reads). With
   * `lookAheadMs`, a device offline now heartbeats when it next connects within that time: the server then sees
   * every device in each hour it is online at some moment, as its status history (and the ETA learnt from it)
   * would have it from a real fleet, even devices that wake for two minutes at a time.
   */
  async sync(onlyInvolved: boolean, lookAheadMs = 0): Promise<void> {
    const due: number[] = [];
    const { presence, model } = this.host;
    for (let i = 0; i < model.size; i++) {
      if (onlyInvolved && !this.interest[i] && !this.work.has(i)) continue;
      if (this.now - this.lastBeat[i]! < FRESH_MS) continue;
      if (presence.isOnline(i, this.now)) due.push(i);
      else if (lookAheadMs > 0) {
        const next = presence.nextOnline(i, this.now);
        if (next < this.now + lookAheadMs) this.syncAgenda.push(Math.ceil(next), i, 0);
      }
    }
    for (let from = 0; from < due.length; from += SYNC_CHUNK) {
      await this.heartbeat(due.slice(from, from + SYNC_CHUNK));
    }
  }

  /**
   * Devices with a waiting update in rollout k: they become interested, and those whose update may start now
   * ask for it soon (online ones within their heartbeat interval, offline ones when they connect).
   */
  learn(k: number, devices: ReadonlyArray<{ index: number; phase: number }>, first: boolean): void {
    const o = this.host.observation(k)!;
    const r = this.host.rollout(k)!;
    const { model, presence, scenario } = this.host;
    for (const { index: i, phase } of devices) {
      if (first || o.phase[i] === -1) {
        o.phase[i] = phase;
        o.failureP[i] = model.failureProbability(i, r.release);
      }
      if (this.work.has(i)) continue;
      this.interest[i] = 1;
      // Not offered before its phase starts or the rollout runs: the simulator calls again then.
      if (phase > r.currentPhase || r.state !== 'running') continue;
      if (presence.isOnline(i, this.now)) {
        const spread = uniform(scenario.seed, i, this.now % 1e9) * model.heartbeatMs(i);
        this.schedule(i, this.now + 1 + Math.floor(spread), POLL);
      } else this.scheduleConnect(i);
    }
  }

  /**
   * Offers up to `n` freed slots of rollout k to the devices queued for one. A slot goes to the first queued
   * device online now, which asks at once; the offline ones it passes stay queued (they could not take it:
   * any device online asks first). Only when WAKE_SCAN queued devices in a row are offline does the first of
   * them get the slot's turn at its next connection, so a slot freed at night still finds a taker.
   */
  wake(k: number, n: number): void {
    const o = this.host.observation(k);
    if (!o) return;
    for (let woken = 0; woken < n && o.queueHead < o.queue.length; woken++) {
      const passed: number[] = [];
      let taker = -1;
      while (taker === -1 && passed.length < WAKE_SCAN && o.queueHead < o.queue.length) {
        const i = o.queue[o.queueHead++]!;
        if (this.work.has(i)) this.inQueue[i] = 0;
        else if (this.host.presence.isOnline(i, this.now)) taker = i;
        else passed.push(i);
      }
      if (taker !== -1) {
        this.inQueue[taker] = 0;
        this.schedule(taker, this.now, POLL);
      } else if (passed.length > 0) {
        const first = passed.shift()!;
        this.inQueue[first] = 0;
        this.scheduleConnect(first);
      }
      for (const i of passed) o.queue.push(i);
    }
    if (o.queueHead > 4096 && o.queueHead * 2 > o.queue.length) {
      o.queue.splice(0, o.queueHead);
      o.queueHead = 0;
    }
  }

  /** A network drop: that share of the downloads in progress lose the connection for `durationMs`. */
  drop(share: number, durationMs: number, salt: number): number {
    let dropped = 0;
    for (const [i, w] of this.work) {
      if (w.step !== DOWNLOADING || w.stepEnds === 0) continue;
      if (uniform(this.host.scenario.seed, i, salt, 0xd) >= share) continue;
      this.host.presence.drop(i, this.now + durationMs);
      this.pauseDownload(i, w);
      dropped++;
    }
    return dropped;
  }

  // ── talking to the server ───────────────────────────────────────────────────────────────────────────

  private async heartbeat(devices: number[]): Promise<void> {
    if (devices.length === 0) return;
    const { model } = this.host;
    const answers = await this.host
      .gateway()
      .heartbeats(devices.map((i) => ({ id: model.id(i), firmware: model.firmwareOf(i) })));
    this.host.count('heartbeats', devices.length);
    for (let n = 0; n < devices.length; n++) {
      const i = devices[n]!;
      this.lastBeat[i] = this.now;
      this.answer(i, answers[n] ?? []);
    }
    await this.flushReports();
  }

  private send(i: number, w: Work, body: Omit<ReportBody, 'seq'>): void {
    w.seq++;
    this.reports.push({ i, w, body: { seq: w.seq, ...body } });
  }

  /** The reports made so far reach the server; a refused one means it is done with the update: drop it. */
  private async flushReports(): Promise<void> {
    if (this.reports.length === 0) return;
    const batch = this.reports;
    this.reports = [];
    const { model } = this.host;
    const accepted = await this.host
      .gateway()
      .reports(batch.map(({ i, w, body }) => ({ deviceId: model.id(i), updateId: w.updateId, body })));
    this.host.count('reports', batch.length);
    batch.forEach(({ i, w, body }, n) => {
      if (accepted[n]) return;
      if (this.work.get(i) === w) this.endWork(i, w, null);
      // The server had given up on the update (timed out) before the device's last word reached it.
      else if (body.state === 'succeeded' || body.state === 'failed')
        this.host.observation(w.rollout)?.refused(i, this.host.moment());
    });
  }

  // ── the devices ──────────────────────────────────────────────────────────────────────────────────────

  /** What a device does with the updates a heartbeat lists. */
  private answer(i: number, updates: PendingUpdateJson[]): void {
    const current = this.work.get(i);
    if (current) {
      const listed = updates.find((u) => u.id === current.updateId);
      if (!listed || !ACTIVE.has(listed.state)) {
        // The server gave up on it (timed out, cancelled) while the device was away: it lets it go.
        this.endWork(i, current, null);
      } else if (current.step === DOWNLOADING && current.stepEnds === 0) {
        this.count(current, true);
        this.resumeDownload(i, current);
        return;
      } else if (current.step === INSTALLED) {
        this.finish(i, current, current.fails ? 'failed' : 'succeeded');
        return;
      } else return;
    }
    let held: PendingUpdateJson | undefined;
    for (const u of updates) {
      const k = this.host.rolloutIndex(u.rollout_id);
      if (u.state === 'notified' && u.retry_after === null) {
        if (this.work.has(i)) {
          this.doubleOffer(k, `${this.host.model.id(i)} granted ${u.id} while busy with another update`);
          continue;
        }
        this.start(i, u, k);
      } else if (u.retry_after !== null && !held) held = u;
    }
    if (this.work.has(i)) return;
    if (held) {
      this.waitFor(i, held);
      return;
    }
    const engineEvery = this.host.scenario.simulation.engineEveryMs;
    const failed = this.failedAt[i]!;
    if (!Number.isNaN(failed) && this.now - failed < 2 * engineEvery + 60 * MINUTE) {
      // A failed update comes back (pending) at the engine's next pass: ask again after it.
      this.interest[i] = 1;
      this.schedule(i, this.now + engineEvery, POLL);
    } else this.interest[i] = this.inLaterPhase(i) ? 1 : 0;
  }

  /** The device waits for a later phase of some rollout: it is offered nothing until that phase starts. */
  private inLaterPhase(i: number): boolean {
    for (let k = 0; k < this.host.rolloutCount(); k++) {
      const o = this.host.observation(k)!;
      if (o.outcome[i] === OUTCOME.none && o.phase[i]! > (this.host.rollout(k)?.currentPhase ?? 0))
        return true;
    }
    return false;
  }

  /** Held back by the server: ask again when the answer can have changed. */
  private waitFor(i: number, u: PendingUpdateJson): void {
    this.interest[i] = 1;
    const k = this.host.rolloutIndex(u.rollout_id);
    const r = this.host.rollout(k);
    const o = this.host.observation(k);
    if (!r || !o) {
      this.schedule(i, this.now + Math.max(1, u.retry_after!) * 1000, POLL);
      return;
    }
    // Not running, or not this device's phase yet: the simulator wakes it when that changes.
    if (r.state !== 'running' || o.phase[i]! > r.currentPhase) return;
    if (r.spec.endAt !== null && this.now >= r.spec.endAt) {
      this.interest[i] = 0;
      return;
    }
    const zone = this.host.model.zoneOf(i);
    const hold = holdFor({
      rollout: r,
      update: { phase: Math.max(0, o.phase[i]!), notBefore: null, purpose: 'update' },
      deviceZone: zone,
      now: this.now,
    });
    if (hold && r.spec.window && !isInWindow(r.spec.window, windowZone(r.spec.window, zone), this.now)) {
      this.schedule(i, nextWindowStart(r.spec.window, windowZone(r.spec.window, zone), this.now), POLL);
    } else if (hold === null && r.spec.rate === null && Number.isNaN(this.failedAt[i]!)) {
      // Only a free slot holds it: it waits for one to be freed.
      if (!this.inQueue[i]) {
        this.inQueue[i] = 1;
        o.queue.push(i);
      }
    } else this.schedule(i, this.now + Math.max(1, u.retry_after!) * 1000, POLL);
  }

  private doubleOffer(k: number, why: string): void {
    const o = this.host.observation(k);
    if (!o) return;
    o.doubleOffers++;
    if (o.doubleOfferExamples.length < 5) o.doubleOfferExamples.push(why);
  }

  private start(i: number, u: PendingUpdateJson, k: number): void {
    const { model, scenario } = this.host;
    const o = this.host.observation(k);
    const r = this.host.rollout(k);
    const version = (JSON.parse(u.manifest) as { version: string }).version;
    const grant = hash32(textSalt(u.id));
    if (o) {
      const id = model.id(i);
      if (this.lastGrant[i] === grant && Number.isNaN(this.failedAt[i]!))
        this.doubleOffer(k, `${id} granted ${u.id} twice`);
      if (o.outcome[i] === OUTCOME.succeeded && u.action !== 'switch')
        this.doubleOffer(k, `${id} granted ${o.name} again after it succeeded`);
      if (r?.spec.window && u.action !== 'switch') {
        const zone = windowZone(r.spec.window, model.zoneOf(i));
        if (!isInWindow(r.spec.window, zone, this.now)) {
          o.outsideWindow++;
          if (o.outsideWindowExamples.length < 5)
            o.outsideWindowExamples.push(`${id} at ${new Date(this.now).toISOString()} (${zone})`);
        }
      }
      o.started();
    }
    this.lastGrant[i] = grant;
    this.failedAt[i] = Number.NaN;
    const attempt = o?.grants ?? 0;
    const seconds = draw(
      model.groupOf(i).installSeconds,
      uniform(scenario.seed, i, attempt, 0x51),
      uniform(scenario.seed, i, attempt, 0x52),
    );
    const isSwitch = u.action === 'switch';
    // A device returning to its previous version (a rollback) installs another release than the rollout's.
    const ownRelease = r?.release.endsWith(`@${version}`) === true;
    const other = `${r?.release.split('@')[0] ?? ''}@${version}`;
    const w: Work = {
      updateId: u.id,
      rollout: k,
      version,
      action: u.action,
      seq: u.last_seq,
      step: isSwitch ? INSTALLING : DOWNLOADING,
      downloadLeftMs: isSwitch ? 0 : seconds * 1000 * DOWNLOAD_SHARE,
      installMs: isSwitch ? SWITCH_MS : seconds * 1000 * (1 - DOWNLOAD_SHARE),
      fails:
        !isSwitch &&
        (o && ownRelease
          ? o.fails(i)
          : uniform(scenario.seed, i, textSalt(other), 0xfa) < model.failureProbability(i, other)),
      stepEnds: 0,
      counted: false,
      tagValue: r?.spec.maxConcurrentPer ? (model.tagOf(i, r.spec.maxConcurrentPer.tag) ?? '') : null,
    };
    this.work.set(i, w);
    this.count(w, true);
    this.interest[i] = 1;
    this.host.markBusy();
    if (w.step === DOWNLOADING) {
      // A device the server offers a delta (it reported the delta's source version) fetches the delta.
      o?.downloaded(u);
      this.send(i, w, { state: 'downloading', progress: 0 });
      this.resumeDownload(i, w);
    } else {
      this.send(i, w, { state: 'installing' });
      w.stepEnds = this.now + w.installMs;
      this.schedule(i, w.stepEnds, STEP);
    }
  }

  /** Downloads while the device is online: to the end, or to the end of its session (then it waits). */
  private resumeDownload(i: number, w: Work): void {
    w.stepEnds = Math.min(this.now + w.downloadLeftMs, this.host.presence.sessionEnd(i, this.now));
    this.schedule(i, w.stepEnds, STEP);
  }

  private pauseDownload(i: number, w: Work): void {
    w.downloadLeftMs = Math.max(0, w.stepEnds - this.now);
    w.stepEnds = 0;
    this.count(w, false);
    this.scheduleConnect(i);
  }

  /** Device-side concurrency: a device counts while it downloads or installs, not while it waits offline. */
  private count(w: Work, on: boolean): void {
    const o = this.host.observation(w.rollout);
    if (!o || w.counted === on) return;
    w.counted = on;
    o.updating(on ? 1 : -1, w.tagValue);
  }

  private step(i: number): void {
    const w = this.work.get(i);
    if (!w) return;
    const { presence } = this.host;
    if (w.step === DOWNLOADING) {
      w.downloadLeftMs = Math.max(0, w.stepEnds - this.now);
      if (
        !presence.isOnline(i, this.now) ||
        (w.downloadLeftMs > 0 && this.now >= presence.sessionEnd(i, this.now))
      ) {
        // The connection went mid-download: it resumes when the device is back (and asks the server first).
        this.pauseDownload(i, w);
        return;
      }
      if (w.downloadLeftMs > 1) {
        this.resumeDownload(i, w);
        return;
      }
      if (w.action === 'download_only') {
        this.finish(i, w, w.fails ? 'failed' : 'succeeded');
        return;
      }
      w.step = INSTALLING;
      this.send(i, w, { state: 'installing' });
      w.stepEnds = this.now + w.installMs;
      this.schedule(i, w.stepEnds, STEP);
      return;
    }
    if (!presence.isOnline(i, this.now)) {
      // Installed offline: the reports wait in the device's outbox for the next connection.
      w.step = INSTALLED;
      this.count(w, false);
      this.scheduleConnect(i);
      return;
    }
    this.finish(i, w, w.fails ? 'failed' : 'succeeded');
  }

  private finish(i: number, w: Work, state: 'succeeded' | 'failed'): void {
    if (state === 'succeeded' && w.action !== 'download_only') this.send(i, w, { state: 'verifying' });
    this.send(i, w, state === 'failed' ? { state, error: 'simulated failure' } : { state });
    if (state === 'succeeded' && w.action !== 'download_only') {
      this.host.model.firmware[i] = this.host.model.version(w.version);
      this.maybeGoDark(i, w);
    }
    this.endWork(i, w, state);
    // A failed update may be retried, a staged one switched: the device asks again after the engine's next pass.
    const r = this.host.rollout(w.rollout);
    if (state === 'failed' || r?.spec.strategy === 'blue_green' || this.host.rolloutCount() > 1) {
      this.schedule(i, this.now + this.host.scenario.simulation.engineEveryMs, POLL);
    } else this.interest[i] = 0;
  }

  /** A release that breaks the device some time after a fine install (scenario `dark_after_update`). */
  private maybeGoDark(i: number, w: Work): void {
    const dark = this.host.model.groupOf(i).darkAfterUpdate;
    if (!dark || w.action === 'switch') return;
    const salt = textSalt(`dark ${w.version}`);
    if (uniform(this.host.scenario.seed, i, salt) >= dark.share) return;
    this.host.presence.goDark(i, this.now + uniform(this.host.scenario.seed, i, salt + 1) * dark.withinMs);
  }

  private endWork(i: number, w: Work, state: 'succeeded' | 'failed' | null): void {
    this.work.delete(i);
    this.host.markBusy();
    const o = this.host.observation(w.rollout);
    this.count(w, false);
    if (o) {
      if (state !== null && w.action !== 'switch') {
        o.outcome[i] = state === 'succeeded' ? OUTCOME.succeeded : OUTCOME.failed;
        o.finishedAt[i] = this.now;
        o.finishedMoment[i] = this.host.moment();
      }
      if (state !== 'succeeded' && w.action !== 'switch') o.failedOnce(i, this.host.moment(), state === null);
      this.wake(w.rollout, 1);
    }
    // A failure, or the server giving up on it (timed out, cancelled): a later grant of it is a retry.
    if (state !== 'succeeded') this.failedAt[i] = this.now;
  }
}
