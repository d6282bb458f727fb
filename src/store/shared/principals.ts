/** Users, API tokens and custom roles in shared SQL (the PrincipalStore of store/principals.ts), each change with its event. */
import type { Kysely, Selectable } from 'kysely';
import { FleetError } from '../../core/errors.js';
import { isUniqueViolation } from '../db-errors.js';
import type { CustomRole, NewToken, NewUser, PrincipalStore, TokenInfo, User } from '../principals.js';
import type { ApiTokensTable, Database, RolesTable, UsersTable } from '../schema.js';
import { insertEvents } from './events.js';

const num = (v: number | null) => (v === null ? null : Number(v));

const toUser = (r: Selectable<UsersTable>): User => ({
  id: r.id,
  name: r.name,
  role: r.role,
  scope: r.scope,
  createdAt: Number(r.created_at),
  disabledAt: num(r.disabled_at),
});

const toToken = (r: Selectable<ApiTokensTable>): TokenInfo => ({
  id: r.id,
  name: r.name,
  role: r.role,
  scope: r.scope,
  createdAt: Number(r.created_at),
  expiresAt: num(r.expires_at),
  lastUsedAt: num(r.last_used_at),
  revokedAt: num(r.revoked_at),
  createdBy: r.created_by,
});

const toRole = (r: Selectable<RolesTable>): CustomRole => ({
  name: r.name,
  permissions: JSON.parse(r.permissions) as string[],
  createdAt: Number(r.created_at),
});

/** What an event says of a token: never its secret or hash. */
const tokenData = (t: TokenInfo) => ({
  id: t.id,
  name: t.name,
  role: t.role,
  scope: t.scope,
  expires_at: t.expiresAt,
});

export class SqlPrincipals implements PrincipalStore {
  constructor(private readonly db: Kysely<Database>) {}

  async addUser(user: NewUser, actor: string): Promise<User> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('users')
          .values({
            id: user.id,
            name: user.name,
            password_hash: user.passwordHash,
            role: user.role,
            scope: user.scope,
            created_at: user.createdAt,
            disabled_at: null,
          })
          .execute();
        const { passwordHash: _hash, ...shown } = user;
        const added: User = { ...shown, disabledAt: null };
        await insertEvents(trx, [
          {
            at: user.createdAt,
            type: 'user.added',
            deviceId: null,
            rolloutId: null,
            actor,
            reason: null,
            data: { id: user.id, name: user.name, role: user.role, scope: user.scope },
          },
        ]);
        return added;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new FleetError('CONFLICT', `a user named ${user.name} exists already`, undefined, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async listUsers(): Promise<User[]> {
    const rows = await this.db.selectFrom('users').selectAll().orderBy('name').execute();
    return rows.map(toUser);
  }

  async findUser(name: string): Promise<(User & { passwordHash: string }) | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return row && { ...toUser(row), passwordHash: row.password_hash };
  }

  async disableUser(name: string, at: number, actor: string): Promise<User> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) throw new FleetError('NOT_FOUND', `user ${name} does not exist`);
      if (row.disabled_at !== null) throw new FleetError('CONFLICT', `user ${name} is disabled already`);
      await trx
        .updateTable('users')
        .set({ disabled_at: at })
        .where('id', '=', row.id)
        .where('disabled_at', 'is', null)
        .execute();
      await insertEvents(trx, [
        {
          at,
          type: 'user.disabled',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: { id: row.id, name },
        },
      ]);
      return { ...toUser(row), disabledAt: at };
    });
  }

  async addToken(token: NewToken, tokenHash: string, actor: string): Promise<TokenInfo> {
    return this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('api_tokens')
        .values({
          id: token.id,
          name: token.name,
          role: token.role,
          token_hash: tokenHash,
          created_at: token.createdAt,
          revoked_at: null,
          scope: token.scope,
          expires_at: token.expiresAt,
          last_used_at: null,
          created_by: token.createdBy,
        })
        .execute();
      const added: TokenInfo = { ...token, lastUsedAt: null, revokedAt: null };
      await insertEvents(trx, [
        {
          at: token.createdAt,
          type: 'api_token.created',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: tokenData(added),
        },
      ]);
      return added;
    });
  }

  async listTokens(): Promise<TokenInfo[]> {
    const rows = await this.db
      .selectFrom('api_tokens')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .execute();
    return rows.map(toToken);
  }

  async findToken(tokenHash: string): Promise<TokenInfo | undefined> {
    const row = await this.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return row && toToken(row);
  }

  async revokeToken(id: string, at: number, actor: string): Promise<TokenInfo> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw new FleetError('NOT_FOUND', `API token ${id} does not exist`);
      if (row.revoked_at !== null) throw new FleetError('CONFLICT', `API token ${id} was already revoked`);
      await trx
        .updateTable('api_tokens')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      const revoked = { ...toToken(row), revokedAt: at };
      await insertEvents(trx, [
        {
          at,
          type: 'api_token.revoked',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: tokenData(revoked),
        },
      ]);
      return revoked;
    });
  }

  async touchToken(id: string, at: number, granularityMs: number): Promise<void> {
    await this.db
      .updateTable('api_tokens')
      .set({ last_used_at: at })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<=', at - granularityMs)]))
      .execute();
  }

  async addRole(role: CustomRole, actor: string): Promise<CustomRole> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('roles')
          .values({
            name: role.name,
            permissions: JSON.stringify(role.permissions),
            created_at: role.createdAt,
          })
          .execute();
        await insertEvents(trx, [
          {
            at: role.createdAt,
            type: 'role.added',
            deviceId: null,
            rolloutId: null,
            actor,
            reason: null,
            data: { name: role.name, permissions: role.permissions },
          },
        ]);
        return role;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new FleetError('CONFLICT', `a role named ${role.name} exists already`, undefined, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async listRoles(): Promise<CustomRole[]> {
    const rows = await this.db.selectFrom('roles').selectAll().orderBy('name').execute();
    return rows.map(toRole);
  }

  async findRole(name: string): Promise<CustomRole | undefined> {
    const row = await this.db.selectFrom('roles').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toRole(row);
  }

  async deleteRole(name: string, at: number, actor: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('roles').select('name').where('name', '=', name).executeTakeFirst();
      if (!row) throw new FleetError('NOT_FOUND', `role ${name} does not exist`);
      const token = await trx
        .selectFrom('api_tokens')
        .select('id')
        .where('role', '=', name)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      const user = await trx
        .selectFrom('users')
        .select('name')
        .where('role', '=', name)
        .where('disabled_at', 'is', null)
        .executeTakeFirst();
      if (token || user) {
        throw new FleetError(
          'CONFLICT',
          `role ${name} is held by ${token ? `token ${token.id}` : `user ${user!.name}`}; revoke or disable it first`,
        );
      }
      await trx.deleteFrom('roles').where('name', '=', name).execute();
      await insertEvents(trx, [
        { at, type: 'role.deleted', deviceId: null, rolloutId: null, actor, reason: null, data: { name } },
      ]);
    });
  }
}
