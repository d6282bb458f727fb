/**
 * Versioned schema migrations, applied at start-up by Kysely's Migrator. Written once with the schema
 * builder; the dialect differences are the column types chosen by `types()` and SQLite's counters (0007, 0008).
 * Over 500 lines because it is the schema's history, read in order: a released migration is never edited.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { deltas } from './migration-0022-deltas.js';
import { sessions } from './migration-0024-sessions.js';
import { telemetry } from './migration-0026-telemetry.js';
import { deviceHealth } from './migration-0027-device-health.js';
import { agentlessDelivery } from './migration-0030-agentless-delivery.js';
import { rateCounts } from './migration-0031-rate-counts.js';
import { releaseVariants } from './migration-0032-release-variants.js';
import { deviceConfig } from './migration-0034-device-config.js';
import { groups } from './migration-0035-groups.js';
import { deviceWindows } from './migration-0036-device-windows.js';
import { downloadsUnderWay } from './migration-0037-downloads-under-way.js';
import { meteredDownloads } from './migration-0038-metered-downloads.js';
import { sharedWindows } from './migration-0039-shared-windows.js';
import { connectivityClasses } from './migration-0040-connectivity-classes.js';
import { director } from './migration-0042-director.js';
import { configStaged } from './migration-0043-config-staged.js';
import { configRollouts } from './migration-0044-config-rollouts.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

function types(dialect: Dialect) {
  const pg = dialect === 'postgres';
  return {
    time: pg ? ('bigint' as const) : ('integer' as const),
    real: pg ? ('double precision' as const) : ('real' as const),
    // Version keys and ids must compare byte-wise in both databases, whatever the server's locale.
    binaryText: pg ? sql`text collate "C"` : sql`text`,
    serial: pg ? ('bigserial' as const) : ('integer' as const),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

function initial(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('devices')
        .addColumn('id', t.binaryText, (c) => c.primaryKey())
        // Sortable columns: listDevices pages by them and must order them alike in both databases.
        .addColumn('name', t.binaryText, (c) => c.notNull())
        .addColumn('firmware_version', 'text')
        .addColumn('firmware_key', t.binaryText)
        .addColumn('hardware_type', t.binaryText)
        .addColumn('location', 'text')
        .addColumn('timezone', 'text')
        .addColumn('customer', 'text')
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('last_seen', t.time)
        .addColumn('recorded_status', 'text', (c) => c.notNull())
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('updated_at', t.time, (c) => c.notNull())
        .addColumn('decommissioned_at', t.time)
        .addColumn('credential_hash', 'text')
        .addColumn('geo_lat', t.real)
        .addColumn('geo_lon', t.real)
        .addColumn('battery', t.real)
        .addColumn('signal_strength', t.real)
        .addColumn('device_time', 'text')
        .addColumn('metrics', 'text')
        .execute();
      await db.schema.createIndex('devices_last_seen').on('devices').columns(['last_seen']).execute();
      await db.schema.createIndex('devices_firmware_key').on('devices').columns(['firmware_key']).execute();
      await db.schema.createIndex('devices_hardware').on('devices').columns(['hardware_type']).execute();
      await db.schema.createIndex('devices_name').on('devices').columns(['name', 'id']).execute();

      await db.schema
        .createTable('device_tags')
        .addColumn('device_id', t.binaryText, (c) => c.notNull().references('devices.id').onDelete('cascade'))
        .addColumn('key', t.binaryText, (c) => c.notNull())
        .addColumn('value', t.binaryText, (c) => c.notNull())
        .addPrimaryKeyConstraint('device_tags_pk', ['device_id', 'key'])
        .execute();
      await db.schema
        .createIndex('device_tags_key_value')
        .on('device_tags')
        .columns(['key', 'value', 'device_id'])
        .execute();

      await db.schema
        .createTable('events')
        .addColumn('id', t.serial, (c) =>
          dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
        )
        .addColumn('at', t.time, (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text')
        .addColumn('rollout_id', 'text')
        .addColumn('actor', 'text')
        .addColumn('reason', 'text')
        .addColumn('data', 'text', (c) => c.notNull().defaultTo('{}'))
        .execute();
      await db.schema.createIndex('events_device').on('events').columns(['device_id', 'id']).execute();
      await db.schema.createIndex('events_rollout').on('events').columns(['rollout_id', 'id']).execute();

      await db.schema
        .createTable('api_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('revoked_at', t.time)
        .execute();

      await db.schema
        .createTable('enrollment_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('uses_left', 'integer')
        .addColumn('expires_at', t.time)
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('revoked_at', t.time)
        .execute();
    },
  };
}

function releases(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('releases')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', t.binaryText, (c) => c.notNull())
        .addColumn('version', t.binaryText, (c) => c.notNull())
        .addColumn('version_key', t.binaryText, (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('hardware', 'text', (c) => c.notNull())
        .addColumn('size', t.time, (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('allow_downgrade', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('deleted_at', t.time)
        .addUniqueConstraint('releases_name_version', ['name', 'version'])
        .execute();
      await db.schema.createIndex('releases_sha256').on('releases').columns(['sha256']).execute();

      await db.schema
        .createTable('device_updates')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('device_id', t.binaryText, (c) => c.notNull().references('devices.id'))
        .addColumn('release_id', 'text', (c) => c.notNull().references('releases.id'))
        .addColumn('rollout_id', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('last_seq', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('progress', 'integer')
        .addColumn('error', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('from_version', 'text')
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('updated_at', t.time, (c) => c.notNull())
        .addColumn('finished_at', t.time)
        .execute();
      await db.schema
        .createIndex('device_updates_device')
        .on('device_updates')
        .columns(['device_id', 'state'])
        .execute();
      await db.schema
        .createIndex('device_updates_release')
        .on('device_updates')
        .columns(['release_id', 'state'])
        .execute();
      await db.schema
        .createIndex('device_updates_rollout')
        .on('device_updates')
        .columns(['rollout_id', 'state'])
        .execute();
    },
  };
}

function fleetHistory(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('fleet_snapshots')
        .addColumn('at', t.time, (c) => c.primaryKey())
        .addColumn('total', 'integer', (c) => c.notNull())
        .addColumn('online', 'integer', (c) => c.notNull())
        .addColumn('offline', 'integer', (c) => c.notNull())
        .addColumn('abandoned', 'integer', (c) => c.notNull())
        .addColumn('unknown', 'integer', (c) => c.notNull())
        .addColumn('decommissioned', 'integer', (c) => c.notNull())
        .execute();
    },
  };
}

function rollouts(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('rollouts')
        .addColumn('id', t.binaryText, (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('release_id', 'text', (c) => c.notNull().references('releases.id'))
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('current_phase', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('phase_starts', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('gates', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('approved_phase', 'integer', (c) => c.notNull().defaultTo(-1))
        .addColumn('promoted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('targets', 'integer', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('updated_at', t.time, (c) => c.notNull())
        .addColumn('started_at', t.time)
        .addColumn('finished_at', t.time)
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', t.time)
        .execute();
      await db.schema.createIndex('rollouts_state').on('rollouts').columns(['state']).execute();
      await db.schema
        .alterTable('device_updates')
        .addColumn('phase', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .alterTable('device_updates')
        .addColumn('purpose', 'text', (c) => c.notNull().defaultTo('update'))
        .execute();
      await db.schema.alterTable('device_updates').addColumn('not_before', t.time).execute();
      await db.schema.alterTable('device_updates').addColumn('granted_at', t.time).execute();
      await db.schema.alterTable('device_updates').addColumn('slot_key', 'text').execute();
      await db.schema
        .createIndex('device_updates_rollout_phase')
        .on('device_updates')
        .columns(['rollout_id', 'phase', 'state'])
        .execute();
      await db.schema
        .createIndex('device_updates_rollout_device')
        .on('device_updates')
        .columns(['rollout_id', 'device_id'])
        .execute();
      await db.schema
        .createIndex('device_updates_rollout_granted')
        .on('device_updates')
        .columns(['rollout_id', 'granted_at'])
        .execute();
    },
  };
}

function webhooks(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('types', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('rollout_id', 'text')
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('disabled_at', t.time)
        .addColumn('cursor_event_id', t.time, (c) => c.notNull().defaultTo(0))
        .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', t.time, (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('last_delivered_at', t.time)
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', t.time)
        .execute();
    },
  };
}

/** The engine counts a rollout's updates by phase, purpose and state on every pass: from the index alone. */
function rolloutCountsIndex(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createIndex('device_updates_rollout_counts')
        .on('device_updates')
        .columns(['rollout_id', 'phase', 'purpose', 'state'])
        .execute();
    },
  };
}

/**
 * Counting a rollout's updates by phase, purpose and state read every update of the rollout: on a
 * 1,000,000-device rollout that is a million index entries on every engine pass and every slot grant.
 * On SQLite the counts are kept in `rollout_counts`, moved by triggers in the same statement as the rows
 * (so no write path can forget them). PostgreSQL keeps counting with the index: its replicas would queue on
 * shared counter rows. Both get the index the in-progress time-out looks its updates up by.
 */
function rolloutCounts(dialect: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createIndex('device_updates_rollout_state_granted')
        .on('device_updates')
        .columns(['rollout_id', 'state', 'granted_at'])
        .execute();
      if (dialect !== 'sqlite') return;
      await sql`CREATE TABLE rollout_counts (
        rollout_id TEXT NOT NULL, phase INTEGER NOT NULL, purpose TEXT NOT NULL, state TEXT NOT NULL,
        n INTEGER NOT NULL, PRIMARY KEY (rollout_id, phase, purpose, state)) WITHOUT ROWID`.execute(db);
      await sql`INSERT INTO rollout_counts (rollout_id, phase, purpose, state, n)
        SELECT rollout_id, phase, purpose, state, count(*) FROM device_updates
        WHERE rollout_id IS NOT NULL GROUP BY rollout_id, phase, purpose, state`.execute(db);
      await sql`CREATE TRIGGER device_updates_counted_insert AFTER INSERT ON device_updates
        WHEN new.rollout_id IS NOT NULL BEGIN
          INSERT INTO rollout_counts (rollout_id, phase, purpose, state, n)
          VALUES (new.rollout_id, new.phase, new.purpose, new.state, 1)
          ON CONFLICT DO UPDATE SET n = n + 1;
        END`.execute(db);
      await sql`CREATE TRIGGER device_updates_counted_delete AFTER DELETE ON device_updates
        WHEN old.rollout_id IS NOT NULL BEGIN
          UPDATE rollout_counts SET n = n - 1 WHERE rollout_id = old.rollout_id AND phase = old.phase
            AND purpose = old.purpose AND state = old.state;
        END`.execute(db);
      await sql`CREATE TRIGGER device_updates_counted_update
        AFTER UPDATE OF rollout_id, phase, purpose, state ON device_updates
        WHEN old.rollout_id IS NOT new.rollout_id OR old.phase IS NOT new.phase
          OR old.purpose IS NOT new.purpose OR old.state IS NOT new.state BEGIN
          UPDATE rollout_counts SET n = n - 1 WHERE rollout_id = old.rollout_id AND phase = old.phase
            AND purpose = old.purpose AND state = old.state;
          INSERT INTO rollout_counts (rollout_id, phase, purpose, state, n)
          SELECT new.rollout_id, new.phase, new.purpose, new.state, 1 WHERE new.rollout_id IS NOT NULL
          ON CONFLICT DO UPDATE SET n = n + 1;
        END`.execute(db);
    },
  };
}

/**
 * Every index on device_updates costs every write of an update, and a rollout over a million devices writes a
 * million. (rollout_id, state) is the start of (rollout_id, state, granted_at), which serves the same queries;
 * SQLite reads its counts from rollout_counts, so (rollout_id, phase, purpose, state) serves no query there.
 * (rollout_id, granted_at) only counts the updates granted since an instant: updates never granted (all those
 * of a new rollout) are left out of it.
 */
function fewerUpdateIndexes(dialect: Dialect): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema.dropIndex('device_updates_rollout').execute();
      if (dialect === 'sqlite') await db.schema.dropIndex('device_updates_rollout_counts').execute();
      await db.schema.dropIndex('device_updates_rollout_granted').execute();
      await db.schema
        .createIndex('device_updates_rollout_granted')
        .on('device_updates')
        .columns(['rollout_id', 'granted_at'])
        .where(sql.ref('granted_at'), 'is not', null)
        .execute();
    },
  };
}

/**
 * The ETA samples a rollout's waiting devices on every read of its progress, evenly spaced in update-id
 * order: from this index alone (no row read), a million waiting devices cost tens of milliseconds. Partial:
 * only waiting updates are in it.
 */
function waitingSampleIndex(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .createIndex('device_updates_waiting')
        .on('device_updates')
        .columns(['rollout_id', 'id'])
        .where(sql<boolean>`state in ('pending', 'scheduled')`)
        .execute();
    },
  };
}

/**
 * Fewer indexes that move with an update's state, so a device report writes less: a rollout's waiting updates
 * by phase come from the partial index of waiting updates, now (rollout_id, phase, id), which leaves
 * (rollout_id, phase, state) nothing to do; a release's updates are looked for only when it is deleted, which
 * (release_id) answers without moving at every report.
 */
function lighterUpdateWrites(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema.dropIndex('device_updates_waiting').execute();
      await db.schema
        .createIndex('device_updates_waiting')
        .on('device_updates')
        .columns(['rollout_id', 'phase', 'id'])
        .where(sql<boolean>`state in ('pending', 'scheduled')`)
        .execute();
      await db.schema.dropIndex('device_updates_rollout_phase').execute();
      await db.schema.dropIndex('device_updates_release').execute();
      await db.schema
        .createIndex('device_updates_release')
        .on('device_updates')
        .column('release_id')
        .execute();
    },
  };
}

/**
 * Events are looked up by device or by rollout, never for the events without one: most events (a device's
 * status) have no rollout, and rollout events have no device, so each index holds only the rows it can find
 * and an event written moves one index fewer (a query's `= ?` on the column implies its IS NOT NULL).
 */
function partialEventIndexes(): Migration {
  return {
    async up(db: AnyDb) {
      for (const column of ['device_id', 'rollout_id'] as const) {
        const name = column === 'device_id' ? 'events_device' : 'events_rollout';
        await db.schema.dropIndex(name).execute();
        await db.schema
          .createIndex(name)
          .on('events')
          .columns([column, 'id'])
          .where(sql.ref(column), 'is not', null)
          .execute();
      }
    },
  };
}

/** An enrollment token claims imported devices only where its filter says so (null: none). */
function enrollmentClaims(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema.alterTable('enrollment_tokens').addColumn('claim_filter', 'text').execute();
    },
  };
}

/**
 * Event retention (store/shared/event-retention.ts): a device's status history per UTC day for the days whose raw
 * events are gone, and one row saying how far the days reach and which replica prunes (a lease).
 */
function eventRetention(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('device_status_days')
        .addColumn('device_id', t.binaryText, (c) => c.notNull())
        .addColumn('day', 'integer', (c) => c.notNull())
        .addColumn('online_hours', 'integer', (c) => c.notNull())
        .addColumn('start_hours', 'integer', (c) => c.notNull())
        .addColumn('end_online', 'integer', (c) => c.notNull())
        .addColumn('online_ms', 'integer', (c) => c.notNull())
        .addColumn('changes', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('device_status_days_pk', ['device_id', 'day'])
        .execute();
      await db.schema
        .createIndex('device_status_days_day')
        .on('device_status_days')
        .columns(['day'])
        .execute();
      await db.schema
        .createTable('event_retention')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('days_until', t.time, (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', t.time)
        .execute();
      await db.insertInto('event_retention').values({ id: 1, days_until: 0 }).execute();
    },
  };
}

/** The states of an update still open (core/update-state.ts: not final), written out as the index says them. */
const OPEN_SQL = sql<boolean>`state in ('pending', 'scheduled', 'notified', 'downloading', 'installing', 'verifying')`;

/**
 * At most one open update per device, held by the database itself: two replicas assigning the same device at
 * once could each supersede what they saw and insert their own. Devices that already hold several keep the
 * newest (by created_at, then id) and the others are cancelled, each with its event, before the index is made.
 */
function oneOpenUpdate(): Migration {
  const reason = 'superseded: a device holds one open update (migration 0014)';
  return {
    async up(db: AnyDb) {
      const older = sql`select o.id from device_updates o where ${OPEN_SQL} and exists (
          select 1 from device_updates n where n.device_id = o.device_id
            and n.state in ('pending', 'scheduled', 'notified', 'downloading', 'installing', 'verifying')
            and (n.created_at > o.created_at or (n.created_at = o.created_at and n.id > o.id)))`;
      const now = Date.now();
      await sql`insert into events (at, type, device_id, rollout_id, actor, reason, data)
        select ${now}, 'update.cancelled', device_id, rollout_id, null, ${reason},
          '{"update":"' || id || '","from":"' || state || '","to":"cancelled"}'
        from device_updates where id in (${older})`.execute(db);
      await sql`update device_updates set state = 'cancelled', error = ${reason}, updated_at = ${now},
        finished_at = ${now} where id in (${older})`.execute(db);
      await db.schema
        .createIndex('device_updates_one_open')
        .on('device_updates')
        .column('device_id')
        .unique()
        .where(OPEN_SQL)
        .execute();
    },
  };
}

/**
 * Replicas driving rollouts (store/shared/replicas.ts): each refreshes its row on every engine tick; a row whose
 * time ran out is a replica gone. The count of live ones sets each replica's share of the rollout leases.
 */
function replicas(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('replicas')
        .addColumn('name', t.binaryText, (c) => c.primaryKey())
        .addColumn('started_at', t.time, (c) => c.notNull())
        .addColumn('expires_at', t.time, (c) => c.notNull())
        .execute();
    },
  };
}

/**
 * Device certificates FleetD issued (or, later, a trusted factory CA's): a device authenticated by a client
 * certificate is the device of its fingerprint here, and a revoked row stops it at once on every replica.
 */
function deviceCertificates(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('device_certificates')
        .addColumn('serial', t.binaryText, (c) => c.primaryKey())
        .addColumn('device_id', t.binaryText, (c) => c.notNull())
        .addColumn('fingerprint', t.binaryText, (c) => c.notNull().unique())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('not_before', t.time, (c) => c.notNull())
        .addColumn('not_after', t.time, (c) => c.notNull())
        .addColumn('issued_at', t.time, (c) => c.notNull())
        .addColumn('revoked_at', t.time)
        .execute();
      await db.schema
        .createIndex('device_certificates_device')
        .on('device_certificates')
        .column('device_id')
        .execute();
    },
  };
}

/**
 * The approval queue (store/shared/admission.ts): each device's admission, and for a device that asked to join
 * without a token, the fingerprint that proves a later request comes from the same requester.
 */
function deviceAdmission(): Migration {
  return {
    async up(db: AnyDb) {
      await db.schema
        .alterTable('devices')
        .addColumn('admission', 'text', (c) => c.notNull().defaultTo('accepted'))
        .execute();
      await db.schema.alterTable('devices').addColumn('admission_key', 'text').execute();
      await db.schema
        .alterTable('devices')
        .addColumn('preauthorized', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // The queue is listed often and holds few rows; the fleet itself is almost all 'accepted'.
      await db.schema
        .createIndex('devices_admission_waiting')
        .on('devices')
        .column('admission')
        .where(sql.ref('admission'), '!=', 'accepted')
        .execute();
    },
  };
}

/**
 * Factory CAs an operator trusts (`fleetd ca trust`): a removed one keeps its row for the history of the devices
 * it registered; one live CA per name.
 */
function trustedCas(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('trusted_cas')
        .addColumn('name', t.binaryText, (c) => c.notNull())
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('fingerprint', t.binaryText, (c) => c.notNull())
        .addColumn('tags', 'text', (c) => c.notNull().defaultTo('{}'))
        .addColumn('hardware_from', 'text', (c) => c.notNull())
        .addColumn('approve', 'integer', (c) => c.notNull())
        .addColumn('added_at', t.time, (c) => c.notNull())
        .addColumn('removed_at', t.time)
        .addPrimaryKeyConstraint('trusted_cas_pk', ['name', 'added_at'])
        .execute();
      await db.schema
        .createIndex('trusted_cas_live_name')
        .on('trusted_cas')
        .column('name')
        .unique()
        .where(sql.ref('removed_at'), 'is', null)
        .execute();
    },
  };
}

/**
 * Operator access: users, custom roles, and API tokens that carry a scope, an expiry and their last use. Tokens
 * made before this migration keep their role and have no scope or expiry (the first-start admin token among them).
 */
function principals(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', t.binaryText, (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('scope', 'text')
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('disabled_at', t.time)
        .execute();
      await db.schema
        .createTable('roles')
        .addColumn('name', t.binaryText, (c) => c.primaryKey())
        .addColumn('permissions', 'text', (c) => c.notNull())
        .addColumn('created_at', t.time, (c) => c.notNull())
        .execute();
      await db.schema.alterTable('api_tokens').addColumn('scope', 'text').execute();
      await db.schema.alterTable('api_tokens').addColumn('expires_at', t.time).execute();
      await db.schema.alterTable('api_tokens').addColumn('last_used_at', t.time).execute();
      await db.schema.alterTable('api_tokens').addColumn('created_by', 'text').execute();
    },
  };
}

/**
 * The audit log (store/shared/audit-log.ts): append-only, hash-chained entries, numbered by `audit_head`, the one
 * row every append updates first: its row lock (PostgreSQL) or the write lock (SQLite) makes appends from every
 * replica one chain. The anchor is the last entry pruned, where verification starts.
 */
function auditLog(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('audit_log')
        .addColumn('seq', t.time, (c) => c.primaryKey())
        .addColumn('at', t.time, (c) => c.notNull())
        .addColumn('actor', 'text')
        .addColumn('role', 'text')
        .addColumn('source', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('outcome', 'integer', (c) => c.notNull())
        .addColumn('before', 'text')
        .addColumn('after', 'text')
        .addColumn('request_id', 'text')
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_log_at').on('audit_log').columns(['at']).execute();
      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', t.time, (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('anchor_seq', t.time, (c) => c.notNull())
        .addColumn('anchor_hash', 'text', (c) => c.notNull())
        .execute();
      const genesis = '0'.repeat(64);
      await db
        .insertInto('audit_head')
        .values({ id: 1, seq: 0, hash: genesis, anchor_seq: 0, anchor_hash: genesis })
        .execute();
    },
  };
}

/**
 * Remote commands (docs/remote-commands.md): a command, and one row per device it targets with that device's
 * state and result. The heartbeat looks for a device's queued rows; expiry for the open rows of commands past
 * their deadline.
 */
function remoteManagement(dialect: Dialect): Migration {
  const t = types(dialect);
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('commands')
        .addColumn('id', t.binaryText, (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('spec', 'text', (c) => c.notNull())
        .addColumn('created_at', t.time, (c) => c.notNull())
        .addColumn('expires_at', t.time, (c) => c.notNull())
        .addColumn('max_concurrent', 'integer', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('command_targets')
        .addColumn('command_id', t.binaryText, (c) =>
          c.notNull().references('commands.id').onDelete('cascade'),
        )
        .addColumn('device_id', t.binaryText, (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('delivered_at', t.time)
        .addColumn('finished_at', t.time)
        .addColumn('exit_code', 'integer')
        .addColumn('output', 'text')
        .addColumn('output_truncated', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('error', 'text')
        .addColumn('logs', 'text')
        .addColumn('logs_bytes', 'integer')
        .addPrimaryKeyConstraint('command_targets_pk', ['command_id', 'device_id'])
        .execute();
      await db.schema
        .createIndex('command_targets_device')
        .on('command_targets')
        .columns(['device_id', 'state'])
        .execute();
      await db.schema
        .createIndex('command_targets_open')
        .on('command_targets')
        .columns(['command_id', 'state'])
        .where(sql.ref('state'), 'in', sql`('queued', 'delivered')`)
        .execute();
      await db.schema.createIndex('commands_expires_at').on('commands').column('expires_at').execute();
    },
  };
}

export function migrationsFor(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_registry': initial(dialect),
    '0002_releases': releases(dialect),
    '0003_fleet_history': fleetHistory(dialect),
    '0004_rollouts': rollouts(dialect),
    '0005_webhooks': webhooks(dialect),
    '0006_rollout_counts_index': rolloutCountsIndex(),
    '0007_rollout_counts': rolloutCounts(dialect),
    '0008_fewer_update_indexes': fewerUpdateIndexes(dialect),
    '0009_waiting_sample_index': waitingSampleIndex(),
    '0010_lighter_update_writes': lighterUpdateWrites(),
    '0011_partial_event_indexes': partialEventIndexes(),
    '0012_enrollment_claims': enrollmentClaims(),
    '0013_event_retention': eventRetention(dialect),
    '0014_one_open_update': oneOpenUpdate(),
    '0015_replicas': replicas(dialect),
    '0016_device_certificates': deviceCertificates(dialect),
    '0017_device_admission': deviceAdmission(),
    '0018_trusted_cas': trustedCas(dialect),
    '0019_principals': principals(dialect),
    '0020_audit_log': auditLog(dialect),
    '0021_remote_management': remoteManagement(dialect),
    '0022_deltas': deltas(dialect),
    '0024_sessions': sessions(dialect),
    '0026_telemetry': telemetry(dialect),
    '0027_device_health': deviceHealth(dialect),
    '0030_agentless_delivery': agentlessDelivery(dialect),
    '0031_rate_counts': rateCounts(dialect),
    '0032_release_variants': releaseVariants(dialect),
    '0034_device_config': deviceConfig(dialect),
    '0035_groups': groups(dialect),
    '0036_device_windows': deviceWindows(dialect),
    '0037_downloads_under_way': downloadsUnderWay(),
    '0038_metered_downloads': meteredDownloads(dialect),
    '0039_shared_windows': sharedWindows(dialect),
    '0040_connectivity_classes': connectivityClasses(dialect),
    '0042_director': director(dialect),
    '0043_config_staged': configStaged(dialect),
    '0044_config_rollouts': configRollouts(dialect),
  };
}

/**
 * `schema` (PostgreSQL) is where the migration bookkeeping tables live: without it Kysely takes a
 * `kysely_migration` table in any schema of the database as ours, and another instance's would do.
 */
export async function migrateToLatest(
  db: Kysely<Database>,
  dialect: Dialect,
  options: { schema?: string } = {},
): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(dialect) };
  const migrator = new Migrator({
    db,
    provider,
    ...(options.schema === undefined ? {} : { migrationTableSchema: options.schema }),
  });
  for (let run = 1; ; run++) {
    const { error, results } = await migrator.migrateToLatest();
    const failed = results?.find((r) => r.status === 'Error');
    if (!error && !failed) return;
    // Kysely finds its tables by introspecting every schema of the database, so DDL another instance runs
    // meanwhile (a migration in its own schema, a schema dropped: test suites do both all the time) can fail
    // that look-up (3F000, 42P01, 42703 from a parallel worker) before any migration ran. No result means
    // nothing was applied, so looking again is safe.
    if (run < 5 && results === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 50 * run));
      continue;
    }
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`, { cause: error });
  }
}
