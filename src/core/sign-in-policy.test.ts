import { describe, expect, it } from 'vitest';
import { mapOidcClaims, parseOidcRoleMapping } from './oidc-role-mapping.js';
import { afterFailedSignIn, DEFAULT_LOCKOUT_POLICY, lockedUntil, sessionEnded } from './sign-in-policy.js';

const MIN = 60_000;
const policy = { maxFailures: 3, windowMs: 10 * MIN, lockMs: 15 * MIN };

describe('sign-in lock-out', () => {
  it('locks a name at the failure that reaches the limit within the window, until its unlock time', () => {
    let state = afterFailedSignIn(undefined, 0, policy);
    state = afterFailedSignIn(state, 1 * MIN, policy);
    expect(lockedUntil(state, 1 * MIN)).toBeNull();
    state = afterFailedSignIn(state, 2 * MIN, policy);
    expect(lockedUntil(state, 2 * MIN)).toBe(17 * MIN);
    expect(lockedUntil(state, 17 * MIN - 1)).toBe(17 * MIN);
    expect(lockedUntil(state, 17 * MIN)).toBeNull();
  });

  it('starts the count again once the window has passed', () => {
    let state = afterFailedSignIn(undefined, 0, policy);
    state = afterFailedSignIn(state, 1 * MIN, policy);
    state = afterFailedSignIn(state, 10 * MIN, policy);
    expect(state).toEqual({ failures: 1, firstAt: 10 * MIN, lockedUntil: null });
    expect(DEFAULT_LOCKOUT_POLICY).toEqual({ maxFailures: 5, windowMs: 15 * MIN, lockMs: 15 * MIN });
  });
});

describe('session lifetime', () => {
  const p = { absoluteMs: 60 * MIN, idleMs: 10 * MIN, touchEveryMs: MIN };
  it('ends a session idle too long, or past its lifetime however busy', () => {
    expect(sessionEnded({ createdAt: 0, lastUsedAt: 0 }, 10 * MIN - 1, p)).toBeNull();
    expect(sessionEnded({ createdAt: 0, lastUsedAt: 0 }, 10 * MIN, p)).toBe('idle');
    expect(sessionEnded({ createdAt: 0, lastUsedAt: 59 * MIN }, 60 * MIN, p)).toBe('expired');
  });
});

describe('OpenID Connect role mapping', () => {
  const mapping = parseOidcRoleMapping(
    {
      mappings: [
        { group: 'fleet-admins', role: 'admin' },
        { group: 'west-ops', role: 'operator', scope: 'tag.region=west' },
      ],
    },
    'roles.yaml',
  );

  it('takes the first rule in file order that names one of the groups', () => {
    const both = mapOidcClaims(mapping, {
      sub: 's1',
      preferred_username: 'ana',
      groups: ['west-ops', 'fleet-admins'],
    });
    expect(both).toMatchObject({ name: 'ana', rule: { role: 'admin', scope: null } });
    const one = mapOidcClaims(mapping, { sub: 's2', email: 'bo@example.com', groups: 'west-ops' });
    expect(one).toMatchObject({
      name: 'bo@example.com',
      rule: { role: 'operator', scope: 'tag.region=west' },
    });
    expect(mapOidcClaims(mapping, { sub: 's3' })).toMatchObject({ name: 's3', groups: [], rule: null });
  });

  it('names the mistake in a role file', () => {
    expect(() => parseOidcRoleMapping({ mappings: [] }, 'r.yaml')).toThrow('r.yaml: mappings: a list');
    expect(() => parseOidcRoleMapping({ mappings: [{ group: 'g' }] }, 'r.yaml')).toThrow(
      'r.yaml: mappings[0].role: a built-in or custom role',
    );
    expect(() => parseOidcRoleMapping({ mapping: [] }, 'r.yaml')).toThrow('unknown key(s) mapping');
    expect(() =>
      parseOidcRoleMapping({ mappings: [{ group: 'g', role: 'viewer', scope: 'tag.=' }] }, 'r.yaml'),
    ).toThrow();
  });
});
