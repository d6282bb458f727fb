/** API and enrollment tokens: creating, finding, listing, revoking, replacing (Store). */
import { FleetError } from '../../core/errors.js';
import type { ApiToken, EnrollmentToken, EnrollmentTokenInfo } from '../store.js';
import type { Db } from './events.js';
import { insertEvents } from './events.js';

export async function listEnrollmentTokens(db: Db): Promise<EnrollmentTokenInfo[]> {
  const rows = await db
    .selectFrom('enrollment_tokens')
    .select(['id', 'uses_left', 'expires_at', 'tags', 'created_at', 'revoked_at', 'claim_filter'])
    .orderBy('created_at', 'desc')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    usesLeft: r.uses_left === null ? null : Number(r.uses_left),
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    tags: JSON.parse(r.tags) as Record<string, string>,
    createdAt: Number(r.created_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    claim: r.claim_filter,
  }));
}

export async function revokeEnrollmentToken(db: Db, id: string, at: number, actor: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('enrollment_tokens')
      .select('revoked_at')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new FleetError('NOT_FOUND', `enrollment token ${id} does not exist`);
    if (row.revoked_at !== null) {
      throw new FleetError('CONFLICT', `enrollment token ${id} was already revoked`);
    }
    // Guarded like a use of the token: an enrollment committing meanwhile either came first or fails.
    await trx
      .updateTable('enrollment_tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    await insertEvents(trx, [
      { at, type: 'enrollment.revoked', deviceId: null, rolloutId: null, actor, reason: null, data: { id } },
    ]);
  });
}

/** Stores a new API token; it works from this write on. */
export async function insertApiToken(db: Db, token: ApiToken, tokenHash: string): Promise<void> {
  await db
    .insertInto('api_tokens')
    .values({
      id: token.id,
      name: token.name,
      role: token.role,
      token_hash: tokenHash,
      created_at: token.createdAt,
      revoked_at: null,
    })
    .execute();
}

export async function replaceApiToken(
  db: Db,
  token: ApiToken,
  tokenHash: string,
  actor: string,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const revoked = await trx
      .updateTable('api_tokens')
      .set({ revoked_at: token.createdAt })
      .where('name', '=', token.name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    await insertApiToken(trx, token, tokenHash);
    const count = Number(revoked.numUpdatedRows);
    await insertEvents(trx, [
      {
        at: token.createdAt,
        type: 'api_token.replaced',
        deviceId: null,
        rolloutId: null,
        actor,
        reason: `${count} live token(s) named ${token.name} revoked`,
        data: { id: token.id, name: token.name, role: token.role },
      },
    ]);
    return count;
  });
}

export async function findApiToken(db: Db, tokenHash: string): Promise<ApiToken | undefined> {
  const row = await db
    .selectFrom('api_tokens')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row && { id: row.id, name: row.name, role: row.role, createdAt: Number(row.created_at) };
}

export async function countApiTokens(db: Db): Promise<number> {
  const row = await db
    .selectFrom('api_tokens')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function createEnrollmentToken(
  db: Db,
  token: EnrollmentToken,
  tokenHash: string,
  actor: string,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('enrollment_tokens')
      .values({
        id: token.id,
        token_hash: tokenHash,
        uses_left: token.usesLeft,
        expires_at: token.expiresAt,
        tags: JSON.stringify(token.tags),
        created_at: token.createdAt,
        revoked_at: null,
        claim_filter: token.claim ?? null,
      })
      .execute();
    await insertEvents(trx, [
      {
        at: token.createdAt,
        type: 'enrollment.created',
        deviceId: null,
        rolloutId: null,
        actor,
        reason: null,
        data: {
          id: token.id,
          usesLeft: token.usesLeft,
          expiresAt: token.expiresAt,
          ...(token.claim ? { claim: token.claim } : {}),
        },
      },
    ]);
  });
}
