/**
 * The durable outbox of status reports. A report is appended (and fsynced) before the state change it
 * describes is acted on, and stays until the server has answered for it, so a report is never lost and,
 * because the server deduplicates by `seq`, never counted twice.
 *
 * Storage: one small JSON file rewritten atomically (temp + fsync + rename) on every change, rather than
 * an append-only log plus an ack file. The outbox holds a dozen reports at most, so a rewrite costs what
 * an append does, and the reports, the per-update seq counters and the acknowledgements live in one file
 * that a kill at any instant leaves whole: no torn last line, no two files to keep in step. The seq
 * counter must live with the reports: were it kept elsewhere, a kill between the two writes could reuse
 * a seq and the server would discard the new report as already delivered.
 */
import type { DeviceReportedState } from '../core/update-state.js';
import type { ReportJson } from '../protocol/mqtt.js';
import { readJson, writeJsonAtomic } from './fsutil.js';

/** A status report as the protocol carries it over MQTT (over HTTP, `update_id` goes in the path). */
export type Report = Required<ReportJson>;

/** The last report made for an update; `cancelled` marks one the server told us to stop working on. */
export interface UpdateMark {
  seq: number;
  state: DeviceReportedState | 'cancelled';
}

interface OutboxFile {
  reports: Report[];
  updates: Record<string, UpdateMark>;
}

const FINAL = new Set<string>(['succeeded', 'failed', 'rolled_back', 'cancelled']);
/** Marks of finished updates kept so an update the server still lists (our final report not yet in) is not redone. */
const KEEP_FINISHED = 32;

export class Outbox {
  private queue: Promise<unknown> = Promise.resolve();

  /** `path` undefined: kept in memory only (the simulator's agents), gone with the process. */
  private constructor(
    private readonly path: string | undefined,
    private data: OutboxFile,
  ) {}

  static inMemory(): Outbox {
    return new Outbox(undefined, { reports: [], updates: {} });
  }

  static async open(path: string): Promise<Outbox> {
    return new Outbox(path, (await readJson<OutboxFile>(path)) ?? { reports: [], updates: {} });
  }

  /** Undelivered reports, oldest first: the order they must reach the server in. */
  pending(): readonly Report[] {
    return this.data.reports;
  }

  mark(updateId: string): UpdateMark | undefined {
    return this.data.updates[updateId];
  }

  /** Durably records a report; `serverSeq` is the server's `last_seq`, so a device that lost its state continues above it. */
  append(
    updateId: string,
    state: DeviceReportedState,
    details: { progress?: number; error?: string; serverSeq?: number } = {},
  ): Promise<Report> {
    return this.change((data) => {
      const seq = Math.max(data.updates[updateId]?.seq ?? 0, details.serverSeq ?? 0) + 1;
      const report: Report = {
        update_id: updateId,
        seq,
        state,
        progress: details.progress ?? null,
        error: details.error ?? null,
      };
      data.reports.push(report);
      delete data.updates[updateId]; // re-insert: the map's order is the order updates were last touched
      data.updates[updateId] = { seq, state };
      return report;
    });
  }

  /** The server has answered for this report (accepted, already had it, or refused it for good). */
  ack(updateId: string, seq: number): Promise<void> {
    return this.change((data) => {
      data.reports = data.reports.filter((r) => r.update_id !== updateId || r.seq > seq);
    });
  }

  /** The server cancelled the update: its undelivered reports are moot, and it must not be picked up again. */
  cancel(updateId: string): Promise<void> {
    return this.change((data) => {
      data.reports = data.reports.filter((r) => r.update_id !== updateId);
      const seq = data.updates[updateId]?.seq ?? 0;
      delete data.updates[updateId];
      data.updates[updateId] = { seq, state: 'cancelled' };
    });
  }

  /** Changes are serialised and each one is one atomic file replacement. */
  private change<T>(apply: (data: OutboxFile) => T): Promise<T> {
    const run = async () => {
      const next: OutboxFile = structuredClone(this.data);
      const result = apply(next);
      prune(next);
      if (this.path !== undefined) await writeJsonAtomic(this.path, next);
      this.data = next; // only once it is on disk
      return result;
    };
    const done = this.queue.then(run, run);
    this.queue = done.catch(() => undefined);
    return done;
  }
}

function prune(data: OutboxFile): void {
  const waiting = new Set(data.reports.map((r) => r.update_id));
  const finished = Object.entries(data.updates).filter(([id, m]) => FINAL.has(m.state) && !waiting.has(id));
  for (const [id] of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) delete data.updates[id];
}

export function isFinalMark(mark: UpdateMark | undefined): boolean {
  return mark !== undefined && FINAL.has(mark.state);
}

/** The server's answer to one report. */
export type SendOutcome =
  | { kind: 'answered'; accepted: boolean; state: string }
  | { kind: 'refused'; reason: string }
  | { kind: 'retry'; reason: string };

export interface DeliveryResult {
  /** False when delivery stopped at a report that must be retried later. */
  ok: boolean;
  reason?: string;
  /** Updates the server answered `cancelled` for. */
  cancelled: string[];
}

/**
 * Sends pending reports in order and stops at the first failure, so the server never sees them out of
 * order. `accepted: false` means the server already had it (a resend after a crash): done all the same.
 */
export async function deliver(
  outbox: Outbox,
  send: (report: Report) => Promise<SendOutcome>,
  onRefused: (report: Report, reason: string) => void,
): Promise<DeliveryResult> {
  const cancelled = new Set<string>();
  for (const report of [...outbox.pending()]) {
    if (cancelled.has(report.update_id)) continue;
    const outcome = await send(report);
    if (outcome.kind === 'retry') return { ok: false, reason: outcome.reason, cancelled: [...cancelled] };
    if (outcome.kind === 'refused') onRefused(report, outcome.reason);
    await outbox.ack(report.update_id, report.seq);
    if (outcome.kind === 'answered' && outcome.state === 'cancelled') cancelled.add(report.update_id);
  }
  return { ok: true, cancelled: [...cancelled] };
}
