/**
 * The fleet simulator: the real FleetD server (VirtualFleet: store, routes, engine, sweeper on a manual
 * clock) and a simulated fleet that speaks the device protocol to it (device-side.ts), driven event by event
 * in virtual time. Nothing in the server knows it is simulated.
 *
 * Device events are handled in steps of `simulation.step`: what devices do within one step reaches the
 * server together, through its group commits. Idle devices do not heartbeat every 5 minutes: every
 * `sync_every`, and whenever the server is about to read last_seen (a rollout is planned, a phase starts and
 * its ETA is recorded), every online device not heard from for 5 minutes heartbeats, then the status sweep
 * runs. The engine passes every `engine_every` while devices are busy, at each phase's soak end, and hourly
 * otherwise.
 */

import { type StateCounts, tally } from '../core/rollout/counts.js';
import { TIMED_OUT_REASON } from '../core/rollout/dispatch.js';
import { phaseLimits } from '../core/rollout/phase-limits.js';
import { purposeCounts } from '../engine/counts.js';
import { rolloutProgress } from '../engine/progress.js';
import { EventPruner } from '../events/event-pruner.js';
import type { PlanJson } from '../protocol/rollouts.js';
import { databaseBytes, IN_MEMORY_LIMIT_BYTES } from '../store/open.js';
import type { RetentionPolicy, Rollout, Store, TimeContext } from '../store/store.js';
import { DeviceSide } from './device-side.js';
import { FleetModel } from './fleet-model.js';
import { deviceSecret, type Gateway, httpGateway, secretHash, storeGateway } from './gateway.js';
import { type EtaSample, RolloutObservation } from './observer.js';
import { Presence } from './presence.js';
import type { Scenario } from './scenario.js';
import { VirtualFleet } from './virtual-fleet.js';

const HOUR = 3_600_000;
const REGISTER_CHUNK = 20_000;
const OPEN_STATES = new Set(['scheduled', 'running', 'paused', 'halted']);

export interface SimStats {
  heartbeats: number;
  reports: number;
  /** Events the server recorded (its outbox and audit log). */
  events: number;
  engineTicks: number;
  syncs: number;
  /** How often every online device heartbeats (ms; null: only before the server reads last_seen). */
  syncEveryMs: number | null;
  /** Where the server's database was: in memory, or a file (a large run, or `dataDir`). */
  database: 'memory' | 'file';
  wallMs: number;
  setupMs: number;
  peakRssBytes: number;
  deviceDaysPerSecond: number;
  /** With `retention`: the SQLite database's size after each day's pruning (pages in use and free). */
  databaseBytes?: Array<{ day: number; bytes: number }>;
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
  /** Keep the server's data (a SQLite file) here; default: the database lives in memory for the run. */
  dataDir?: string;
  /** An in-memory database larger than this moves to a file (default: three quarters of SQLite's limit). */
  memoryLimitBytes?: number;
  /**
   * Prune events once a simulated day with this policy (the server's pruner) and record the database's size
   * after each run in `stats.databaseBytes` (bench/retention.ts).
   */
  retention?: RetentionPolicy;
  /** With `retention`: called after each day's pruning with the store, to look into the database (bench/retention.ts). */
  afterPrune?: (day: number, store: Store) => void | Promise<void>;
}

/**
 * What the server's database grows to over the run, about: a registered device with its update takes 1.5 KB,
 * and each simulated day adds up to half a kilobyte of status and update events (a 100,000-device week
 * measured 417 MB). The database lives in memory while this fits SQLite's in-memory limit, with room to spare;
 * a larger run keeps it in a temporary file.
 */
export function estimatedDatabaseBytes(s: Scenario): number {
  const devices = s.fleet.reduce((n, g) => n + g.count, 0);
  return devices * (1_500 + 500 * (s.durationMs / (24 * HOUR)));
}

/**
 * `sync_every: auto`: hourly up to 10,000 devices; for larger fleets about an hour per 10,000 devices, so a
 * sync costs about the same per simulated hour whatever the fleet's size, rounded up to a number of hours
 * that shares no factor with 24 so that, day after day, the samples fall at every hour of the day.
 */
export function autoSyncEveryMs(devices: number): number {
  let hours = Math.min(23, Math.max(1, Math.round(devices / 10_000)));
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  while (hours > 1 && gcd(hours, 24) > 1) hours++;
  return hours * HOUR;
}

export class Simulator {
  private fleet!: VirtualFleet;
  private gateway!: Gateway;
  private readonly model: FleetModel;
  private readonly presence: Presence;
  private readonly devices: DeviceSide;
  private readonly obs: RolloutObservation[] = [];
  private readonly rollouts: Array<Rollout | undefined> = [];
  private readonly byId = new Map<string, number>();
  private readonly syncEveryMs: number | null;
  private readonly stats: SimStats;
  private lastTick = Number.NEGATIVE_INFINITY;
  private lastPruneDay = 0;
  private busy = false;
  private soakEnds: number[] = [];
  /**
   * Counts the loop's turns: what devices do and what the server decides at one virtual instant are ordered
   * by it (a gate's pass may come before or after the devices' step at the same instant).
   */
  private moment = 0;
  /** The turn of the server's last decision at each instant (engine pass, operator action). */
  private readonly decisionMoments = new Map<number, number>();

  constructor(
    readonly scenario: Scenario,
    private readonly options: SimOptions = {},
  ) {
    this.model = new FleetModel(scenario);
    this.presence = new Presence(this.model);
    const sync = scenario.simulation.syncEveryMs;
    this.syncEveryMs = sync === 'auto' ? autoSyncEveryMs(this.model.size) : sync;
    this.stats = {
      heartbeats: 0,
      reports: 0,
      events: 0,
      engineTicks: 0,
      syncs: 0,
      syncEveryMs: this.syncEveryMs,
      database: 'memory',
      wallMs: 0,
      setupMs: 0,
      peakRssBytes: 0,
      deviceDaysPerSecond: 0,
    };
    this.devices = new DeviceSide({
      scenario,
      model: this.model,
      presence: this.presence,
      now: () => this.now,
      moment: () => this.moment,
      gateway: () => this.gateway,
      rollout: (k) => this.rollouts[k],
      observation: (k) => this.obs[k],
      rolloutIndex: (id) => (id === null ? -1 : (this.byId.get(id) ?? -1)),
      rolloutCount: () => this.obs.length,
      markBusy: () => {
        this.busy = true;
      },
      count: (what, n) => {
        this.stats[what] += n;
      },
    });
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

  private stamp(line: string): void {
    this.log(`${new Date(this.now).toISOString()}  ${line}`);
  }

  private sampleRss(): void {
    const rss = process.memoryUsage().rss;
    if (rss > this.stats.peakRssBytes) this.stats.peakRssBytes = rss;
  }

  async run(): Promise<SimOutcome> {
    const wallStart = performance.now();
    const s = this.scenario;
    const inMemory =
      this.options.dataDir === undefined && estimatedDatabaseBytes(s) < IN_MEMORY_LIMIT_BYTES * 0.7;
    this.stats.database = inMemory ? 'memory' : 'file';
    this.fleet = await VirtualFleet.create({
      start: s.start,
      ...(this.options.dataDir ? { dataDir: this.options.dataDir } : inMemory ? { db: ':memory:' } : {}),
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
      return {
        scenario: s,
        devices: this.model.size,
        observations: this.obs,
        rollouts: this.rollouts.filter((r): r is Rollout => r !== undefined),
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
      if (to % 100_000 === 0 || to === this.model.size)
        this.log(`registered ${to.toLocaleString('en-US')} devices`);
    }
    const hardware = [...new Set(this.scenario.fleet.map((g) => g.hardwareType))];
    const made = new Set<string>();
    for (const r of this.scenario.rollouts) {
      if (made.has(r.spec.release)) continue;
      made.add(r.spec.release);
      const exists = await store.releases.get(r.spec.releaseName, r.spec.releaseVersion);
      if (!exists)
        await this.fleet.release(r.spec.releaseName, r.spec.releaseVersion, r.releaseHardware ?? hardware);
    }
  }

  // ── the loop ──────────────────────────────────────────────────────────────────────────────────────

  private async loop(): Promise<void> {
    const s = this.scenario;
    const end = s.start + s.durationMs;
    const next = { rollout: 0, action: 0, fault: 0 };
    let nextHour = s.start;
    let nextSync = this.syncEveryMs === null ? Number.POSITIVE_INFINITY : s.start;
    const step = s.simulation.stepMs;
    let lastLog = performance.now();
    for (;;) {
      this.moment++;
      const globalAt = Math.min(
        s.rollouts[next.rollout]?.at ?? Number.POSITIVE_INFINITY,
        s.actions[next.action]?.at ?? Number.POSITIVE_INFINITY,
        s.faults[next.fault]?.at ?? Number.POSITIVE_INFINITY,
        nextHour,
        nextSync,
        this.nextTickAt(),
      );
      // Device events wait for the end of their step, where they are handled together.
      const due = this.devices.nextAt();
      const devicesAt = step > 0 && Number.isFinite(due) ? Math.ceil(due / step) * step : due;
      const at = Math.min(globalAt, Math.max(devicesAt, this.now));
      if (at > end) break;
      if (at > this.now) this.fleet.advance(at - this.now);
      if (globalAt > at) {
        await this.devices.runDue();
      } else if (s.faults[next.fault]?.at === at) await this.fault(next.fault++);
      else if (s.rollouts[next.rollout]?.at === at) await this.createRollout(next.rollout++);
      else if (s.actions[next.action]?.at === at) await this.action(next.action++);
      else if (nextSync === at) {
        // Hourly syncs make an hour-faithful status history if devices offline at the instant heartbeat when
        // they connect within the hour; sparser ones (large fleets, for speed) only sample it anyway.
        await this.sync(this.syncEveryMs! <= HOUR ? HOUR : 0);
        nextSync += this.syncEveryMs!;
      } else if (nextHour === at) {
        await this.sample();
        await this.recordEtaEvery(at - s.start);
        nextHour += HOUR;
      } else await this.tick();
      if (performance.now() - lastLog > 5_000) {
        lastLog = performance.now();
        this.sampleRss();
        this.stamp(
          `${this.stats.heartbeats.toLocaleString('en-US')} heartbeats, ${this.stats.reports.toLocaleString('en-US')} reports`,
        );
      }
    }
    if (end > this.now) this.fleet.advance(end - this.now);
    this.moment++;
    await this.tick();
    await this.sample();
    for (let k = 0; k < this.obs.length; k++) {
      const r = await this.fleet.parts.store.rollouts.get(this.obs[k]!.id);
      this.rollouts[k] = r;
      if (r)
        this.obs[k]!.gates = r.gates.map((g) => ({
          ...g,
          moment: this.decisionMoments.get(g.at) ?? this.moment,
        }));
      await this.readTimeouts(this.obs[k]!);
    }
    this.stats.events = await this.fleet.parts.store.lastEventId();
  }

  /** The updates of a rollout the server failed on its own, from its event log. */
  private async readTimeouts(o: RolloutObservation): Promise<void> {
    const { store } = this.fleet.parts;
    for (let after = 0; ; ) {
      const page = await store.listEvents({
        rolloutId: o.id,
        typePrefix: 'update.failed',
        after,
        limit: 10_000,
      });
      for (const e of page) {
        const i = e.deviceId === null ? -1 : this.model.indexOf(e.deviceId);
        if (e.reason === TIMED_OUT_REASON && i >= 0 && !o.timedOut.has(i)) o.timedOut.set(i, e.at);
      }
      if (page.length < 10_000) return;
      after = page[page.length - 1]!.id;
    }
  }

  private nextTickAt(): number {
    if (!this.rollouts.some((r) => r !== undefined && OPEN_STATES.has(r.state)))
      return Number.POSITIVE_INFINITY;
    const every = this.scenario.simulation.engineEveryMs;
    const due = this.lastTick + (this.busy ? every : Math.max(every, HOUR));
    return Math.max(this.now, Math.min(due, ...this.soakEnds));
  }

  // ── server-side moments ──────────────────────────────────────────────────────────────────────────

  private async createRollout(n: number): Promise<void> {
    const r = this.scenario.rollouts[n]!;
    await this.sync();
    // The plan the operator would have read before Create (its ETA band and reachability), kept in the result.
    const plan = await this.fleet.api<PlanJson>('POST', '/api/v1/rollouts?dry_run=true', r.body);
    const created = await this.fleet.api<{ id: string }>('POST', '/api/v1/rollouts', r.body);
    const k = this.obs.length;
    this.obs.push(new RolloutObservation(r.spec.name, created.id, this.model.size));
    this.obs[k]!.plan = plan;
    this.byId.set(created.id, k);
    this.rollouts[k] = await this.fleet.parts.store.rollouts.get(created.id);
    this.stamp(`rollout ${r.spec.name} created (${created.id})`);
    // The server builds deltas in the background, in real time: wait for them so a run is repeatable.
    await this.fleet.parts.deltas?.idle();
    await this.learnTargets(k, true);
    this.lastTick = Number.NEGATIVE_INFINITY;
    await this.recordEta(k);
  }

  /** Devices with a waiting update in rollout k become interested; those that may start ask soon. */
  private async learnTargets(k: number, first: boolean): Promise<void> {
    const { devices } = await this.fleet.parts.store.rollouts.waitingDevices(
      this.obs[k]!.id,
      this.model.size * 4,
    );
    const known = [];
    for (const d of devices) {
      const index = this.model.indexOf(d.deviceId);
      if (index >= 0) known.push({ index, phase: d.phase });
    }
    this.devices.learn(k, known, first);
  }

  private async action(n: number): Promise<void> {
    this.decisionMoments.set(this.now, this.moment);
    const a = this.scenario.actions[n]!;
    const k = this.obs.findIndex((o) => o.name === a.rollout);
    if (k < 0) {
      this.log(`action ${a.action} on ${a.rollout}: the rollout was not created`);
      return;
    }
    try {
      await this.fleet.api('POST', `/api/v1/rollouts/${this.obs[k]!.id}/${a.action}`);
      this.stamp(`${a.action} ${a.rollout}`);
    } catch (error) {
      this.stamp(`${a.action} ${a.rollout} refused: ${(error as Error).message}`);
    }
    await this.tick();
  }

  private async fault(n: number): Promise<void> {
    const f = this.scenario.faults[n]!;
    if (f.kind === 'server_restart') {
      await this.fleet.restart();
      this.stamp('server restarted');
      return;
    }
    const dropped = this.devices.drop(f.share, f.durationMs, n);
    this.stamp(`network drop: ${dropped} downloads interrupted`);
  }

  /** One engine pass; then what changed in each rollout (a phase, a state) reaches the devices. */
  private async tick(): Promise<void> {
    this.decisionMoments.set(this.now, this.moment);
    this.lastTick = this.now;
    this.busy = false;
    this.stats.engineTicks++;
    await this.fleet.parts.engine.tick();
    this.soakEnds = [];
    for (let k = 0; k < this.obs.length; k++) {
      const before = this.rollouts[k];
      if (!before) continue;
      const r = await this.fleet.parts.store.rollouts.get(before.id);
      if (!r) continue;
      this.rollouts[k] = r;
      const phaseStarted = r.currentPhase !== before.currentPhase;
      const resumed = r.state === 'running' && before.state !== 'running';
      const followUps = r.state === 'rolled_back' && before.state !== 'rolled_back';
      if (
        phaseStarted ||
        resumed ||
        followUps ||
        (r.spec.strategy === 'blue_green' && r.currentPhase === 1)
      ) {
        await this.learnTargets(k, false);
        if (phaseStarted) await this.recordEta(k);
      }
      if (r.state === 'running') {
        const p = r.spec.phases[r.currentPhase];
        const soakEnd = (r.phaseStarts[r.currentPhase] ?? this.now) + (p?.waitMs ?? 0);
        if (soakEnd > this.now) this.soakEnds.push(soakEnd + 1);
        // The slots the server has free: its count holds downloads waiting offline for their device too.
        const counts = purposeCounts(await this.fleet.parts.store.rollouts.counts(r.id), 'update');
        const slots = phaseLimits(r.spec, r.currentPhase).maxConcurrent;
        this.devices.wake(k, Math.max(0, slots - tally(counts).active));
      }
    }
  }

  /**
   * Brings last_seen up to date (online devices not heard from lately heartbeat), then a sweep. Every device
   * while the server may still plan a rollout over it or take it into an on_connect rollout; once every
   * rollout of the scenario exists and none takes newcomers, only the devices involved in one, since the
   * server reads no other device's last_seen any more (its ETA and batches read the waiting devices').
   */
  private async sync(lookAheadMs = 0): Promise<void> {
    this.stats.syncs++;
    await this.keepDatabaseInBounds();
    const planning =
      this.obs.length < this.scenario.rollouts.length ||
      this.rollouts.some((r) => r?.spec.strategy === 'on_connect' && OPEN_STATES.has(r.state));
    await this.devices.sync(!planning, lookAheadMs);
    await this.fleet.parts.sweeper.sweep();
  }

  /** The ETA of every running rollout, each `eta_every` (hourly by default) of the run. */
  private async recordEtaEvery(sinceStart: number): Promise<void> {
    const every =
      this.scenario.simulation.etaEveryMs === undefined ? HOUR : this.scenario.simulation.etaEveryMs;
    if (every === null || sinceStart % every !== 0) return;
    for (let k = 0; k < this.obs.length; k++) {
      const last = this.obs[k]!.eta.at(-1);
      if (last?.at !== this.now) await this.recordEta(k, 'hourly');
    }
  }

  private async recordEta(k: number, when: EtaSample['when'] = 'phase_start'): Promise<void> {
    const r = this.rollouts[k];
    if (!r || (r.state !== 'running' && r.state !== 'scheduled')) return;
    await this.sync();
    const progress = await rolloutProgress(this.fleet.parts.store, r, this.ctx());
    if (!progress.eta && when === 'hourly') return;
    this.obs[k]!.eta.push({
      phase: r.currentPhase,
      at: this.now,
      when,
      predictedFinish: progress.eta?.finishAt ?? null,
      p90: progress.eta?.p90At ?? null,
      source: progress.eta?.updateTime.source ?? null,
      unknownDevices: progress.eta?.unknownDevices ?? 0,
      unreachable: progress.eta?.reachability.unreachable.count ?? 0,
    });
  }

  /**
   * SQLite holds at most IN_MEMORY_LIMIT_BYTES in memory: a run that grows its database past three quarters of
   * that (its estimate was short) carries on with the database in a file, the server started again on it, as
   * after a restart (nothing the engine decides depends on the process it runs in).
   */
  private async keepDatabaseInBounds(): Promise<void> {
    if (this.fleet.memoryBytes() < (this.options.memoryLimitBytes ?? IN_MEMORY_LIMIT_BYTES * 0.75)) return;
    const mb = Math.round(this.fleet.memoryBytes() / 2 ** 20);
    await this.fleet.moveToFile();
    this.stats.database = 'file';
    this.stamp(`database moved from memory to a file at ${mb} MB`);
  }

  private async pruneDaily(): Promise<void> {
    const policy = this.options.retention;
    const day = Math.floor((this.now - this.scenario.start) / (24 * HOUR));
    if (!policy || day <= this.lastPruneDay) return;
    this.lastPruneDay = day;
    const { store, clock } = this.fleet.parts;
    await new EventPruner(store, clock, { policy, owner: 'virtual' }).prune();
    this.stats.databaseBytes ??= [];
    this.stats.databaseBytes.push({ day, bytes: databaseBytes(store) });
    await this.options.afterPrune?.(day, store);
  }

  /** The hourly timeline: counts by state of each rollout, as the server has them. */
  private async sample(): Promise<void> {
    this.sampleRss();
    await this.keepDatabaseInBounds();
    await this.pruneDaily();
    for (const o of this.obs) {
      const counts: StateCounts = purposeCounts(await this.fleet.parts.store.rollouts.counts(o.id), 'update');
      o.timeline.push({ at: this.now, counts });
    }
  }
}
