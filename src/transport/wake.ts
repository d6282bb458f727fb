/**
 * Wake-ups: when a device may start an update, tell it over MQTT so it heartbeats now instead of at its next
 * interval. What may have made devices ready is found by tailing the event log, not by hooking the code that
 * writes it, so a replica wakes devices for work any replica decided:
 * - an update assigned outside rollouts (`update.pending` without a rollout): that device;
 * - a remote command queued for a device (`command.queued`): that device; one of its devices finished (a slot of
 *   its concurrency is free): the queued devices its free slots take;
 * - a rollout created, started, resumed, a phase or batch opened, devices joined, switches or rollbacks
 *   queued (rollout events and its `update.pending` events): every device of it the offer would let start;
 * - a device of a rollout finished or failed (its slot is free): as many waiting devices as slots are free;
 * - a maintenance window opened (no event: the clock says so, checked for each running rollout with a window
 *   in the zones of its waiting devices): the devices it lets start.
 * Every replica wakes every device: a wake is a hint, a duplicate costs one extra heartbeat at most, and the
 * agent folds wakes that arrive together into one. A device woken for an update is not woken again for it
 * for a while, so a freed slot goes to the next device in line rather than to one that is offline.
 */
import type { Clock } from '../core/clock.js';
import { phaseLimits } from '../core/rollout/phase-limits.js';
import { devicesReady, windowOpened } from '../core/rollout/wake.js';
import { windowZone } from '../core/rollout/window.js';
import { ACTIVE_STATES, FINAL_STATES, type UpdateState } from '../core/update-state.js';
import type { Rollout, Store, StoredEvent } from '../store/store.js';
import type { TransportLog } from './bridge.js';

const PAGE = 1_000;
/** A device woken for an update and still waiting is woken again for it only after this long. */
const REWAKE_MS = 5 * 60_000;
/** The zones of a rollout's waiting devices are read again after this long. */
const ZONES_TTL_MS = 60_000;
/** Rollout events after which devices of the rollout may start. */
const OPENING = new Set([
  'rollout.created',
  'rollout.started',
  'rollout.resumed',
  'rollout.phase_started',
  'rollout.switch',
  'update.pending',
]);

/** What a page of events asks for: devices to wake by id, rollouts to look at in full or for freed slots. */
export interface WakeWork {
  devices: Set<string>;
  /** Remote commands one of whose devices finished. */
  commandsFreed: Set<string>;
  opened: Set<string>;
  slotsFreed: Set<string>;
}

export function wakeWork(events: StoredEvent[], work: WakeWork = emptyWork()): WakeWork {
  for (const e of events) {
    if (FINISHED_COMMAND.has(e.type) && typeof e.data.command_id === 'string') {
      work.commandsFreed.add(e.data.command_id);
    } else if (e.rolloutId === null) {
      // A remote command queued for a connected device reaches it at once (docs/remote-commands.md).
      if ((e.type === 'update.pending' || e.type === 'command.queued') && e.deviceId)
        work.devices.add(e.deviceId);
    } else if (OPENING.has(e.type)) work.opened.add(e.rolloutId);
    else if (e.type.startsWith('update.') && FINAL_STATES.has(e.type.slice(7) as UpdateState))
      work.slotsFreed.add(e.rolloutId);
  }
  return work;
}

const FINISHED_COMMAND = new Set(['command.succeeded', 'command.failed', 'command.expired']);

const emptyWork = (): WakeWork => ({
  devices: new Set(),
  commandsFreed: new Set(),
  opened: new Set(),
  slotsFreed: new Set(),
});

export class WakePoller {
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Update id → when its device was woken for it. */
  private readonly woken = new Map<string, number>();
  /** Running rollouts with a window: when their windows were last checked, and their devices' zones. */
  private readonly windows = new Map<string, { checkedAt: number; zones: string[]; zonesAt: number }>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly wake: (deviceId: string) => void,
    private readonly log: TransportLog,
    private readonly intervalMs = 500,
  ) {}

  /** Starts from the newest event: what was pending before the start is picked up by heartbeats. */
  async start(): Promise<void> {
    this.cursor = await this.store.lastEventId();
    this.schedule();
  }

  /** One pass: every new event up to now, then the windows that opened since the last pass. */
  async poll(): Promise<void> {
    this.forget(this.clock.now());
    const work = emptyWork();
    for (;;) {
      const events = await this.store.listEvents({ after: this.cursor, limit: PAGE });
      wakeWork(events, work);
      if (events.length > 0) this.cursor = events[events.length - 1]!.id;
      if (events.length < PAGE) break;
    }
    for (const id of work.devices) this.wake(id);
    for (const id of work.commandsFreed) {
      for (const device of await this.store.commands.nextInLine(id, this.clock.now())) this.wake(device);
    }
    await this.windowsOpened(work.opened);
    for (const id of work.opened) await this.wakeReady(id, 'all');
    for (const id of work.slotsFreed) if (!work.opened.has(id)) await this.wakeReady(id, 'slots');
  }

  /** Adds to `opened` every running rollout one of whose windows opened since the last pass. */
  private async windowsOpened(opened: Set<string>): Promise<void> {
    const now = this.clock.now();
    const running = await this.store.rollouts.list({ states: ['running'], limit: 1_000 });
    const seen = new Set<string>();
    for (const r of running) {
      const window = r.spec.window;
      if (window === null) continue;
      seen.add(r.id);
      const w = this.windows.get(r.id);
      if (!w) {
        // First seen now: whatever is open already was woken by the rollout's own events.
        this.windows.set(r.id, { checkedAt: now, zones: [], zonesAt: Number.NEGATIVE_INFINITY });
        continue;
      }
      if (now - w.zonesAt >= ZONES_TTL_MS) {
        w.zones = [
          ...new Set((await this.store.rollouts.targetZones(r.id)).map((z) => windowZone(window, z))),
        ];
        w.zonesAt = now;
      }
      if (w.zones.some((zone) => windowOpened(window, zone, w.checkedAt, now))) opened.add(r.id);
      w.checkedAt = now;
    }
    for (const id of this.windows.keys()) if (!seen.has(id)) this.windows.delete(id);
  }

  /**
   * Wakes the rollout's devices the offer would let start, a page at a time: `all` looks at every waiting
   * device, `slots` stops when the free download slots are spoken for.
   */
  private async wakeReady(id: string, scope: 'all' | 'slots'): Promise<void> {
    const r = await this.store.rollouts.get(id);
    if (r?.state !== 'running') return;
    const now = this.clock.now();
    let slots = phaseLimits(r.spec, r.currentPhase).maxConcurrent - (await this.inProgress(r));
    let after: string | null = null;
    for (;;) {
      if (scope === 'slots' && slots <= 0) return;
      const page = await this.store.rollouts.pendingUpdates(id, after, PAGE);
      const fresh = page.filter((u) => !this.woken.has(u.id));
      const ready = devicesReady(r, fresh, now, slots);
      slots = ready.slotsLeft;
      for (const u of ready.wake) {
        this.woken.set(u.id, now);
        this.wake(u.deviceId);
      }
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.id;
      await new Promise((resolve) => setImmediate(resolve)); // a large fleet is woken in batches
    }
  }

  private async inProgress(r: Rollout): Promise<number> {
    const counts = await this.store.rollouts.counts(r.id);
    return counts
      .filter((c) => c.purpose === 'update' && ACTIVE_STATES.has(c.state))
      .reduce((n, c) => n + c.count, 0);
  }

  private forget(now: number): void {
    for (const [id, at] of this.woken) if (now - at >= REWAKE_MS || now < at) this.woken.delete(id);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.poll()
        .catch((error: unknown) => this.log.warn({ err: (error as Error).message }, 'wake-up poll failed'))
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }
}
