/**
 * Signing in to the dashboard with a user's name and password. Every attempt, failed or not, is an audit entry
 * (`sign-in`, with the outcome and why it failed). A name that fails `maxFailures` times in a window is locked
 * for `lockMs` whatever the password (core/sign-in-policy.ts): counted per name, known user or not, so the
 * lock does not tell which names exist; and each failure also counts against the source address's limit of
 * failed authentications (abuse/abuse-limits.ts), which bounds guessing across many names.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FleetError } from '../../core/errors.js';
import {
  afterFailedSignIn,
  type LockoutPolicy,
  lockedUntil,
  type SessionPolicy,
} from '../../core/sign-in-policy.js';
import { hashSecret, newId, newSecret } from '../../registry/credentials.js';
import type { Session } from '../../store/sessions.js';
import type { AuthenticationGuard } from '../access.js';
import type { ServerContext } from '../context.js';
import { hashPassword, passwordMatches } from '../passwords.js';

export interface SignInPolicies {
  session: SessionPolicy;
  lockout: LockoutPolicy;
}

/** Verified when the name is unknown, so an unknown name takes as long to refuse as a wrong password. */
let decoyHash: Promise<string> | undefined;
const decoy = () => {
  decoyHash ??= hashPassword('not a password of any user: equal timing for unknown names');
  return decoyHash;
};

type Failure = 'bad_credentials' | 'disabled' | 'locked' | 'provider_refused' | 'no_role';

/** Appends the audit entry of one sign-in attempt (never its password, secret or the provider's tokens). */
export async function auditSignIn(
  c: ServerContext,
  request: FastifyRequest,
  name: string,
  outcome: number,
  details: { role?: string; session?: string; failure?: Failure; method: string },
): Promise<void> {
  await c.store.audit
    .append({
      at: c.clock.now(),
      actor: `user:${name}`,
      role: details.role ?? null,
      source: request.ip,
      action: 'sign-in',
      target: { user: name, ...(details.session ? { session: details.session } : {}) },
      outcome,
      before: null,
      after: null,
      requestId: request.id,
      data: { method: details.method, ...(details.failure ? { failure: details.failure } : {}) },
    })
    .catch((error: unknown) =>
      request.log.error({ err: error }, 'could not write the audit entry of a sign-in'),
    );
}

/** Starts a session for `name` (password checked by the caller, or an OpenID Connect sign-in) and audits it. */
export async function startSession(
  c: ServerContext,
  request: FastifyRequest,
  policies: SignInPolicies,
  fields: Pick<Session, 'userName' | 'method' | 'role' | 'scope'>,
): Promise<{ session: Session; secret: string }> {
  const now = c.clock.now();
  const secret = newSecret('session');
  const session = await c.store.sessions.create(
    { id: newId('ses'), ...fields, createdAt: now, lastUsedAt: now },
    hashSecret(secret),
  );
  // Sessions past their lifetime are dropped here, at the next sign-in, rather than by a timer.
  await c.store.sessions.pruneBefore(now - policies.session.absoluteMs);
  await auditSignIn(c, request, fields.userName, 200, {
    role: fields.role,
    session: session.id,
    method: fields.method,
  });
  return { session, secret };
}

/** Checks a name and password; a session on success, else a 401 (or 429 when locked or the source is limited). */
export async function signInWithPassword(
  c: ServerContext,
  request: FastifyRequest,
  reply: FastifyReply,
  guard: AuthenticationGuard,
  policies: SignInPolicies,
  credentials: { name: string; password: string },
): Promise<{ session: Session; secret: string }> {
  const { name, password } = credentials;
  guard.refuseIfLimited(request, reply);
  const locked = lockedUntil(await c.store.sessions.failures(name), c.clock.now());
  if (locked !== null) {
    await auditSignIn(c, request, name, 429, { failure: 'locked', method: 'password' });
    reply.header('retry-after', Math.max(1, Math.ceil((locked - c.clock.now()) / 1000)));
    throw new FleetError(
      'RATE_LIMITED',
      `too many failed sign-ins for ${name}: locked until ${new Date(locked).toISOString()}; try again then, ` +
        'or ask an admin',
      { locked_until: new Date(locked).toISOString() },
    );
  }
  const user = await c.store.principals.findUser(name);
  const matches = await passwordMatches(password, user?.passwordHash ?? (await decoy()));
  const failure: Failure | null =
    !user || !matches ? 'bad_credentials' : user.disabledAt !== null ? 'disabled' : null;
  if (failure !== null || !user) {
    await c.store.sessions.recordFailure(name, (state) =>
      afterFailedSignIn(state, c.clock.now(), policies.lockout),
    );
    await auditSignIn(c, request, name, 401, { failure: failure ?? 'bad_credentials', method: 'password' });
    const message =
      failure === 'disabled' ? `the user ${name} is disabled` : 'unknown user name or wrong password';
    return guard.failed(request, reply, new FleetError('UNAUTHENTICATED', message));
  }
  await c.store.sessions.clearFailures(name);
  return startSession(c, request, policies, {
    userName: user.name,
    method: 'password',
    role: user.role,
    scope: user.scope,
  });
}
