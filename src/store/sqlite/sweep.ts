/**
 * The status sweep on SQLite as prepared statements: devices gone silent are recorded offline (or abandoned)
 * a chunk at a time, each chunk one transaction with its events. The moves and the chunking are the shared
 * code's (heartbeat-effects.ts, shared/sweep.ts); SQLite runs one writer at a time, so a device selected here is
 * still silent when it is written.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';
import type { DeviceStatus } from '../../core/device.js';
import { type ClassFigures, type StatusSweep, statusEvent, statusSweeps } from '../heartbeat-effects.js';
import { SWEEP_CHUNK } from '../shared/sweep.js';
import type { StatusTransition, TimeContext } from '../store.js';
import type { SqliteEvents } from './events.js';

export class SqliteSweep {
  private readonly selects = new Map<
    string,
    Statement<unknown[], { id: string; recorded_status: DeviceStatus }>
  >();
  private readonly record: Statement<[string, string]>;
  private readonly classFigures: Statement<[], ClassFigures>;

  constructor(
    private readonly sqlite: Sqlite,
    private readonly events: SqliteEvents,
  ) {
    this.record = sqlite.prepare('UPDATE devices SET recorded_status = ? WHERE id = ?');
    this.classFigures = sqlite.prepare(
      'SELECT offline_after_ms, abandoned_after_ms FROM connectivity_classes',
    );
  }

  /** The silent devices of one move, after `since` when given (those silent longer were seen to before). */
  private select(move: StatusSweep, bounded: boolean) {
    const key = `${move.to}:${bounded}:${move.ofClass}`;
    let statement = this.selects.get(key);
    if (!statement) {
      statement = this.sqlite.prepare(
        `SELECT id, recorded_status FROM devices
         WHERE last_seen < ? ${bounded ? 'AND last_seen >= ?' : ''}
           AND ${move.column} ${move.ofClass ? '= ?' : 'IS NULL'}
           AND recorded_status IN (${move.from.map((s) => `'${s}'`).join(', ')}) AND decommissioned_at IS NULL
         ORDER BY id LIMIT ${SWEEP_CHUNK}`,
      );
      this.selects.set(key, statement);
    }
    return statement;
  }

  sweep(ctx: TimeContext, since?: number): StatusTransition[] {
    const transitions: StatusTransition[] = [];
    for (const move of statusSweeps(ctx.thresholds, this.classFigures.all())) {
      const args =
        since === undefined ? [ctx.now - move.silentMs] : [ctx.now - move.silentMs, since - move.silentMs];
      if (move.ofClass) args.push(move.silentMs);
      for (;;) {
        const rows = this.sqlite
          .transaction(() => {
            const silent = this.select(move, since !== undefined).all(...args);
            for (const r of silent) this.record.run(move.to, r.id);
            this.events.write(
              silent.map((r) => statusEvent(r.id, r.recorded_status, move.to, ctx.now, move.reason)),
            );
            return silent;
          })
          .immediate();
        for (const r of rows) transitions.push({ deviceId: r.id, from: r.recorded_status, to: move.to });
        if (rows.length < SWEEP_CHUNK) break;
      }
    }
    return transitions;
  }
}
