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

  /** Writes `set` to the row `id`, in whatever transaction the caller holds. */
  run(id: string, set: Record<string, unknown>): void {
    const columns = Object.keys(set);
    const key = columns.join(',');
    let statement = this.statements.get(key);
    if (!statement) {
      statement = this.sqlite.prepare(
        `UPDATE ${this.table} SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`,
      );
      this.statements.set(key, statement);
    }
    statement.run(...Object.values(set), id);
  }
}
