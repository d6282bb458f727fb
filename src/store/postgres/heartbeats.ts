/**
 * The heartbeat write for PostgreSQL in four round trips a batch, whatever its size: BEGIN; one SELECT that
 * locks and reads every device of the batch with whether it has an update to offer; one statement that writes
 * every changed row (UPDATE … FROM unnest) and appends every event (INSERT … SELECT FROM unnest); COMMIT.
 * The shared code (shared/heartbeats.ts) sends an UPDATE a heartbeat, and on a database server each statement
 * is a round trip and a parse: that was most of a batch's time. Decisions come from heartbeat-effects.ts,
 * exactly as in the shared code; test/postgres-native-equivalence.test.ts compares the two.
 */
import { CompiledQuery, type Kysely, sql } from 'kysely';
import { asCallerError } from '../db-errors.js';
import { type HeartbeatRow, heartbeatEffects } from '../heartbeat-effects.js';
import type { Database, DevicesTable } from '../schema.js';
import type { Db } from '../shared/events.js';
import { heartbeatsNamed } from '../shared/heartbeats.js';
import { transact } from '../shared/transact.js';
import { OFFERABLE_STATES } from '../shared/updates.js';
import type { HeartbeatOutcome, NewEvent, PresentedHeartbeat, TimeContext } from '../store.js';

/**
 * Every column a heartbeat may write, with its type for the unnest arrays. A column a heartbeat leaves alone
 * keeps its value: each row carries a bit per column saying which ones it writes (so a written null stays a
 * null, unlike COALESCE). A column missing here that heartbeat-effects.ts starts writing fails loudly.
 */
const WRITABLE: ReadonlyArray<readonly [keyof DevicesTable, string]> = [
  ['last_seen', 'bigint'],
  ['recorded_status', 'text'],
  ['firmware_version', 'text'],
  ['firmware_key', 'text'],
  ['geo_lat', 'float8'],
  ['geo_lon', 'float8'],
  ['battery', 'float8'],
  ['signal_strength', 'float8'],
  ['device_time', 'text'],
  ['metrics', 'text'],
  ['reboots', 'integer'],
  ['app_crashes', 'integer'],
];
const BIT = new Map(WRITABLE.map(([column], i) => [column, 1 << i]));

/** The write: the rows and the batch's events, one statement (an empty events array inserts nothing). */
const WRITE = `WITH written AS (
    UPDATE devices d SET ${WRITABLE.map(
      ([c], i) => `${c} = CASE WHEN v.given & ${1 << i} <> 0 THEN v.${c} ELSE d.${c} END`,
    ).join(', ')}
    FROM unnest($1::text[], $2::int[], ${WRITABLE.map(([, type], i) => `$${i + 3}::${type}[]`).join(', ')})
      AS v(id, given, ${WRITABLE.map(([c]) => c).join(', ')})
    WHERE d.id = v.id
  )
  INSERT INTO events (at, type, device_id, rollout_id, actor, reason, data)
  SELECT at, type, device_id, rollout_id, actor, reason, data
  FROM unnest($${WRITABLE.length + 3}::bigint[], $${WRITABLE.length + 4}::text[], $${WRITABLE.length + 5}::text[],
    $${WRITABLE.length + 6}::text[], $${WRITABLE.length + 7}::text[], $${WRITABLE.length + 8}::text[],
    $${WRITABLE.length + 9}::text[]) WITH ORDINALITY AS e(at, type, device_id, rollout_id, actor, reason, data, n)
  ORDER BY n`;

type LockedRow = HeartbeatRow & { id: string; has_open: boolean; live_fingerprints: string[] };

export class PostgresHeartbeats {
  constructor(private readonly db: Kysely<Database>) {}

  record(batch: PresentedHeartbeat[], ctx: TimeContext): Promise<HeartbeatOutcome[]> {
    return transact(this.db, async (trx) => {
      // Rows locked in id order, so two batches (two replicas) holding the same devices queue, never deadlock.
      const ids = [...new Set(batch.map((b) => b.heartbeat.deviceId))];
      // Of the client certificates presented, each device's live ones, read in the same statement; a batch of
      // bearer heartbeats alone (no certificate) skips the look-up.
      const fingerprints = batch.flatMap((b) =>
        b.certificateFingerprint === undefined ? [] : [b.certificateFingerprint],
      );
      const live =
        fingerprints.length === 0
          ? sql`'{}'::text[]`
          : sql`ARRAY(SELECT c.fingerprint FROM device_certificates c WHERE c.device_id = d.id
                  AND c.revoked_at IS NULL AND c.fingerprint = ANY(${fingerprints}::text[]))`;
      const read = await sql<LockedRow>`
        SELECT d.id, d.credential_hash, d.recorded_status, d.last_seen, d.decommissioned_at, d.firmware_version,
          d.admission, d.heartbeat_interval_ms, d.offline_after_ms, d.abandoned_after_ms,
          EXISTS (SELECT 1 FROM device_updates u
                  WHERE u.device_id = d.id AND u.state = ANY(${OFFERABLE_STATES}::text[])) AS has_open,
          ${live} AS live_fingerprints
        FROM devices d WHERE d.id = ANY(${ids}::text[]) ORDER BY d.id FOR UPDATE OF d`.execute(trx);
      const rows = new Map<string, LockedRow>(read.rows.map((r) => [r.id, r]));
      // writes[k]: each device's (k+1)-th write of the batch. A device heartbeats twice in one batch rarely; when
      // it does, its second write is a second statement, as in the shared code (so a value the database refuses
      // fails the batch there too, even when a later heartbeat of the batch would have overwritten it).
      const writes: Array<Map<string, Partial<DevicesTable>>> = [];
      const written = new Map<string, number>();
      const events: NewEvent[] = [];
      const outcomes = batch.map((presented) => {
        const id = presented.heartbeat.deviceId;
        const row = rows.get(id);
        const fingerprint = presented.certificateFingerprint;
        const certified = fingerprint !== undefined && row?.live_fingerprints.includes(fingerprint) === true;
        const effects = heartbeatEffects(row, presented, row?.has_open === true, ctx, certified);
        if (effects.outcome.ok && row) {
          // The same device again in this batch sees this heartbeat's write.
          rows.set(id, { ...row, ...effects.set } as LockedRow);
          const k = written.get(id) ?? 0;
          written.set(id, k + 1);
          if (k === writes.length) writes.push(new Map());
          writes[k]!.set(id, effects.set);
          events.push(...effects.events);
        }
        return effects.outcome;
      });
      for (const [k, sets] of writes.entries()) await write(trx, sets, k === 0 ? events : []);
      return outcomes;
    }).catch((error: unknown) => {
      throw asCallerError(error, heartbeatsNamed(batch));
    });
  }
}

async function write(trx: Db, sets: Map<string, Partial<DevicesTable>>, events: NewEvent[]): Promise<void> {
  const ids: string[] = [];
  const given: number[] = [];
  const columns = WRITABLE.map((): unknown[] => []);
  for (const [id, set] of sets) {
    let bits = 0;
    for (const column of Object.keys(set) as Array<keyof DevicesTable>) {
      const bit = BIT.get(column);
      if (bit === undefined) throw new Error(`the heartbeat write does not know column ${column}`);
      bits |= bit;
    }
    ids.push(id);
    given.push(bits);
    WRITABLE.forEach(([column], i) => {
      columns[i]!.push(set[column] ?? null);
    });
  }
  const parameters = [
    ids,
    given,
    ...columns,
    events.map((e) => e.at),
    events.map((e) => e.type),
    events.map((e) => e.deviceId),
    events.map((e) => e.rolloutId),
    events.map((e) => e.actor),
    events.map((e) => e.reason),
    events.map((e) => JSON.stringify(e.data)),
  ];
  await trx.executeQuery(CompiledQuery.raw(WRITE, parameters));
}
