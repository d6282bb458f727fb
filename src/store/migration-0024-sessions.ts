/**
 * 0024_sessions: dashboard sign-in (docs/access.md): the server-side sessions the cookie names, and the failed
 * sign-ins per name that lock it out. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';
import type { Dialect } from './migrations.js';

// biome-ignore lint/suspicious/noExplicitAny: migrations are written against the schema of their own time, not today's.
type AnyDb = Kysely<any>;

export function sessions(dialect: Dialect): Migration {
  const pg = dialect === 'postgres';
  const time = pg ? ('bigint' as const) : ('integer' as const);
  // Names and hashes must compare byte-wise in both databases, whatever the server's locale.
  const binaryText = pg ? sql`text collate "C"` : sql`text`;
  return {
    async up(db: AnyDb) {
      await db.schema
        .createTable('sessions')
        .addColumn('id', binaryText, (c) => c.primaryKey())
        // SHA-256 of the cookie's secret: a copy of the database signs no one in.
        .addColumn('secret_hash', binaryText, (c) => c.notNull().unique())
        .addColumn('user_name', binaryText, (c) => c.notNull())
        // `password` (role and scope read from the user at each request) or `oidc` (kept from sign-in).
        .addColumn('method', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('scope', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('last_used_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_created_at').on('sessions').column('created_at').execute();
      await db.schema
        .createTable('sign_in_failures')
        .addColumn('name', binaryText, (c) => c.primaryKey())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('first_at', time, (c) => c.notNull())
        .addColumn('locked_until', time)
        .execute();
    },
  };
}
