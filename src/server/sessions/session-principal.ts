/**
 * The principal of a dashboard session: the user signed in, with the user's current role and scope (a
 * password session) or those mapped from the provider's claims at sign-in (an OpenID Connect one). A session
 * past its lifetime or idle too long, or of a user since disabled, authenticates no more.
 */
import type { Clock } from '../../core/clock.js';
import { FleetError } from '../../core/errors.js';
import { parseFilter } from '../../core/filter/index.js';
import { type SessionPolicy, sessionEnded } from '../../core/sign-in-policy.js';
import { hashSecret } from '../../registry/credentials.js';
import type { Session } from '../../store/sessions.js';
import type { Store } from '../../store/store.js';
import { type Principal, permissionsOf } from '../principal.js';

const ENDED = {
  expired: 'the dashboard session has expired: sign in again',
  idle: 'the dashboard session ended after a time unused: sign in again',
} as const;

export async function principalOfSession(
  store: Store,
  secret: string,
  clock: Clock,
  policy: SessionPolicy,
): Promise<{ session: Session; principal: Principal }> {
  const session = await store.sessions.find(hashSecret(secret));
  if (!session) throw new FleetError('UNAUTHENTICATED', 'the dashboard session is unknown or signed out');
  const now = clock.now();
  const ended = sessionEnded(session, now, policy);
  if (ended) {
    await store.sessions.end(session.id);
    throw new FleetError('UNAUTHENTICATED', ENDED[ended]);
  }
  let { role, scope } = session;
  if (session.method === 'password') {
    const user = await store.principals.findUser(session.userName);
    if (!user || user.disabledAt !== null) {
      await store.sessions.end(session.id);
      throw new FleetError('UNAUTHENTICATED', `the user ${session.userName} is disabled`);
    }
    ({ role, scope } = user);
  }
  if (session.lastUsedAt <= now - policy.touchEveryMs) {
    await store.sessions.touch(session.id, now, policy.touchEveryMs);
  }
  return {
    session,
    principal: {
      kind: 'session',
      id: session.id,
      name: session.userName,
      role,
      permissions: await permissionsOf(store, role),
      scope,
      scopeFilter: scope === null ? undefined : parseFilter(scope),
      expiresAt: session.createdAt + policy.absoluteMs,
    },
  };
}
