/**
 * `UPDATE <table> SET <columns> WHERE id = ?` for whatever set of columns a write carries, each shape prepared
 * once: heartbeats, imports and reports write a handful of shapes, and preparing costs more than running.
 */
import type { Database as Sqlite, Statement } from 'better-sqlite3';

export class RowUpdates {
  private readonly statements = new Map<string, Statement>();

  constructor(
    private readonly sqlite: Sqlite,
    private readonly table: 'devices' | 'device_updates',
  ) {}

  /**
   * Writes `set` to the row `id`, in whatever transaction the caller holds; with `state`, only while the row
   * is in that state (a device update's move: see shared/update-state-writer.ts).
   */
  run(id: string, set: Record<string, unknown>, state?: string): void {
    const columns = Object.keys(set);
    const key = `${columns.join(',')}${state === undefined ? '' : '|state'}`;
    let statement = this.statements.get(key);
    if (!statement) {
      statement = this.sqlite.prepare(
        `UPDATE ${this.table} SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE id = ?${state === undefined ? '' : ' AND state = ?'}`,
      );
      this.statements.set(key, statement);
    }
    if (state === undefined) statement.run(...Object.values(set), id);
    else statement.run(...Object.values(set), id, state);
  }
}
