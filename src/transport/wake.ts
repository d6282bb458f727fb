/**
 * Wake-ups: when an update becomes pending for a device, tell it over MQTT so it heartbeats now instead of
 * at its next interval. Pending work is found by tailing the event log (`update.pending`, written by
 * assignments and by the rollout engine), not by hooking the code that writes it, so a replica wakes
 * devices for updates any replica assigned. Every replica wakes every device: a wake is a hint, a
 * duplicate costs one extra heartbeat at most, and the agent folds wakes that arrive together into one.
 */
import type { Store, StoredEvent } from '../store/store.js';
import type { TransportLog } from './bridge.js';

const PAGE = 1_000;

/** The devices a page of events asks to wake, each once. */
export function devicesToWake(events: StoredEvent[]): string[] {
  const ids = new Set<string>();
  for (const e of events) if (e.type === 'update.pending' && e.deviceId) ids.add(e.deviceId);
  return [...ids];
}

export class WakePoller {
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly wake: (deviceId: string) => void,
    private readonly log: TransportLog,
    private readonly intervalMs = 500,
  ) {}

  /** Starts from the newest event: what was pending before the start is picked up by heartbeats. */
  async start(): Promise<void> {
    this.cursor = await this.store.lastEventId();
    this.schedule();
  }

  /** One pass: every new `update.pending` event up to now. */
  async poll(): Promise<void> {
    for (;;) {
      const events = await this.store.listEvents({
        after: this.cursor,
        limit: PAGE,
        typePrefix: 'update.pending',
      });
      for (const id of devicesToWake(events)) this.wake(id);
      if (events.length > 0) this.cursor = events[events.length - 1]!.id;
      if (events.length < PAGE) return;
    }
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
