/**
 * Users, API tokens and custom roles in the store, on every backend: each change with its event and never a
 * secret in it, names unique, revocation and disabling once, last use written at most once per interval, and a
 * role that cannot be deleted while someone holds it.
 */
import { beforeEach, expect, it } from 'vitest';
import { hashSecret } from '../src/registry/credentials.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { forEachBackend } from './support/stores.js';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const DAY = 86_400_000;

forEachBackend((backend) => {
  let store: SqlStore;
  beforeEach(async () => {
    store = await backend.open();
  });

  it('adds, lists, finds and disables users, never listing a password hash', async () => {
    const p = store.principals;
    const added = await p.addUser(
      {
        id: 'usr_1',
        name: 'ana',
        passwordHash: '$argon2id$x',
        role: 'operator',
        scope: 'tag.region=west',
        createdAt: NOW,
      },
      'api:admin',
    );
    expect(added).toEqual({
      id: 'usr_1',
      name: 'ana',
      role: 'operator',
      scope: 'tag.region=west',
      createdAt: NOW,
      disabledAt: null,
    });
    await expect(
      p.addUser(
        { id: 'usr_2', name: 'ana', passwordHash: 'h', role: 'viewer', scope: null, createdAt: NOW },
        'a',
      ),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await p.listUsers()).toEqual([added]);
    expect(JSON.stringify(await p.listUsers())).not.toContain('argon2');
    expect((await p.findUser('ana'))?.passwordHash).toBe('$argon2id$x');
    expect(await p.findUser('bob')).toBeUndefined();

    expect((await p.disableUser('ana', NOW + 1, 'api:admin')).disabledAt).toBe(NOW + 1);
    await expect(p.disableUser('ana', NOW + 2, 'a')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(p.disableUser('bob', NOW + 2, 'a')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const events = await store.listEvents({ limit: 10, typePrefix: 'user.' });
    expect(events.map((e) => [e.type, e.actor])).toEqual([
      ['user.added', 'api:admin'],
      ['user.disabled', 'api:admin'],
    ]);
    expect(JSON.stringify(events)).not.toContain('argon2');
  });

  it('stores tokens by hash with role, scope and expiry, revokes them once, and records their last use', async () => {
    const p = store.principals;
    const token = await p.addToken(
      {
        id: 'tok_ci',
        name: 'ci',
        role: 'release-manager',
        scope: null,
        createdAt: NOW,
        expiresAt: NOW + 90 * DAY,
        createdBy: 'api:admin',
      },
      hashSecret('secret-ci'),
      'api:admin',
    );
    expect(await p.findToken(hashSecret('secret-ci'))).toEqual(token);
    expect(await p.findToken(hashSecret('other'))).toBeUndefined();

    await p.touchToken('tok_ci', NOW + 1000, 60_000);
    await p.touchToken('tok_ci', NOW + 2000, 60_000); // within the interval: not written
    expect((await p.findToken(hashSecret('secret-ci')))?.lastUsedAt).toBe(NOW + 1000);
    await p.touchToken('tok_ci', NOW + 61_000, 60_000);
    expect((await p.findToken(hashSecret('secret-ci')))?.lastUsedAt).toBe(NOW + 61_000);

    const revoked = await p.revokeToken('tok_ci', NOW + 5, 'api:admin');
    expect(revoked.revokedAt).toBe(NOW + 5);
    expect(await p.findToken(hashSecret('secret-ci'))).toBeUndefined();
    await expect(p.revokeToken('tok_ci', NOW + 6, 'a')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(p.revokeToken('tok_nope', NOW + 6, 'a')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await p.listTokens()).map((t) => [t.id, t.revokedAt])).toEqual([['tok_ci', NOW + 5]]);

    const events = await store.listEvents({ limit: 10, typePrefix: 'api_token.' });
    expect(events.map((e) => e.type)).toEqual(['api_token.created', 'api_token.revoked']);
    expect(JSON.stringify(events)).not.toContain(hashSecret('secret-ci'));
  });

  it('a token made before principals existed keeps working with no scope or expiry', async () => {
    await store.createApiToken(
      { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: NOW },
      hashSecret('adm'),
    );
    expect(await store.principals.findToken(hashSecret('adm'))).toMatchObject({
      id: 'tok_admin',
      role: 'admin',
      scope: null,
      expiresAt: null,
      lastUsedAt: null,
    });
  });

  it('keeps custom roles, and refuses to delete one while a live token or enabled user holds it', async () => {
    const p = store.principals;
    const role = { name: 'support', permissions: ['devices.read', 'events.read'], createdAt: NOW };
    expect(await p.addRole(role, 'api:admin')).toEqual(role);
    await expect(p.addRole(role, 'api:admin')).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await p.findRole('support')).toEqual(role);
    expect(await p.listRoles()).toEqual([role]);

    await p.addToken(
      {
        id: 'tok_s',
        name: 's',
        role: 'support',
        scope: null,
        createdAt: NOW,
        expiresAt: null,
        createdBy: null,
      },
      hashSecret('s'),
      'api:admin',
    );
    await expect(p.deleteRole('support', NOW, 'api:admin')).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('tok_s'),
    });
    await p.revokeToken('tok_s', NOW, 'api:admin');
    await p.deleteRole('support', NOW, 'api:admin');
    expect(await p.findRole('support')).toBeUndefined();
    await expect(p.deleteRole('support', NOW, 'api:admin')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
