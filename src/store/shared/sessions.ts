/** Dashboard sessions and sign-in failures in SQL both databases share (the SessionStore of store/sessions.ts). */
import type { Kysely, Selectable } from 'kysely';
import type { SignInFailures } from '../../core/sign-in-policy.js';
import type { Database, SessionsTable, SignInFailuresTable } from '../schema.js';
import type { Session, SessionStore } from '../sessions.js';
import { transact } from './transact.js';

const toSession = (r: Selectable<SessionsTable>): Session => ({
  id: r.id,
  userName: r.user_name,
  method: r.method === 'oidc' ? 'oidc' : 'password',
  role: r.role,
  scope: r.scope,
  createdAt: Number(r.created_at),
  lastUsedAt: Number(r.last_used_at),
});

const toFailures = (r: Selectable<SignInFailuresTable>): SignInFailures => ({
  failures: Number(r.failures),
  firstAt: Number(r.first_at),
  lockedUntil: r.locked_until === null ? null : Number(r.locked_until),
});

export class SqlSessions implements SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(session: Session, secretHash: string): Promise<Session> {
    await this.db
      .insertInto('sessions')
      .values({
        id: session.id,
        secret_hash: secretHash,
        user_name: session.userName,
        method: session.method,
        role: session.role,
        scope: session.scope,
        created_at: session.createdAt,
        last_used_at: session.lastUsedAt,
      })
      .execute();
    return session;
  }

  async find(secretHash: string): Promise<Session | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .selectAll()
      .where('secret_hash', '=', secretHash)
      .executeTakeFirst();
    return row && toSession(row);
  }

  async touch(id: string, at: number, granularityMs: number): Promise<void> {
    // The condition keeps two replicas (or two tabs) from both writing the same minute.
    await this.db
      .updateTable('sessions')
      .set({ last_used_at: at })
      .where('id', '=', id)
      .where('last_used_at', '<=', at - granularityMs)
      .execute();
  }

  async end(id: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', id).execute();
  }

  async pruneBefore(createdBefore: number): Promise<number> {
    const r = await this.db.deleteFrom('sessions').where('created_at', '<', createdBefore).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async failures(name: string): Promise<SignInFailures | undefined> {
    const row = await this.db
      .selectFrom('sign_in_failures')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toFailures(row);
  }

  recordFailure(
    name: string,
    next: (current: SignInFailures | undefined) => SignInFailures,
  ): Promise<SignInFailures> {
    return transact(this.db, async (trx) => {
      // Insert-or-nothing first, so the row exists and the update below holds it for this transaction. A new
      // row's window began at 0, long past: the policy starts a fresh count from it.
      await trx
        .insertInto('sign_in_failures')
        .values({ name, failures: 0, first_at: 0, locked_until: null })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      const row = await trx
        .updateTable('sign_in_failures')
        .set((eb) => ({ failures: eb.ref('failures') }))
        .where('name', '=', name)
        .returningAll()
        .executeTakeFirstOrThrow();
      const state = next(toFailures(row));
      await trx
        .updateTable('sign_in_failures')
        .set({ failures: state.failures, first_at: state.firstAt, locked_until: state.lockedUntil })
        .where('name', '=', name)
        .execute();
      return state;
    });
  }

  async clearFailures(name: string): Promise<void> {
    await this.db.deleteFrom('sign_in_failures').where('name', '=', name).execute();
  }
}
