/**
 * The store's part of dashboard sign-in (store/shared/sessions.ts): server-side sessions, found by the hash of
 * the cookie's secret, and the failed sign-ins per name behind the lock-out (core/sign-in-policy.ts).
 */
import type { SignInFailures } from '../core/sign-in-policy.js';

export interface Session {
  id: string;
  userName: string;
  /** `password`: role and scope are the user's, read at each request; `oidc`: mapped from claims at sign-in. */
  method: 'password' | 'oidc';
  role: string;
  scope: string | null;
  createdAt: number;
  lastUsedAt: number;
}

export interface SessionStore {
  /** Stores a session by the hash of its secret; the secret itself is never given to the store. */
  create(session: Session, secretHash: string): Promise<Session>;
  /** The session with this secret hash, ended or not (the caller checks its age against its clock). */
  find(secretHash: string): Promise<Session | undefined>;
  /** Records a use, written only when the stored one is older than `granularityMs`. */
  touch(id: string, at: number, granularityMs: number): Promise<void>;
  /** Ends a session (sign-out); ending an unknown one is no error. */
  end(id: string): Promise<void>;
  /** Removes sessions signed in before `createdBefore` (past the absolute lifetime); returns how many. */
  pruneBefore(createdBefore: number): Promise<number>;

  /** The failed sign-ins of a name, if any are recorded. */
  failures(name: string): Promise<SignInFailures | undefined>;
  /** Replaces the failures of a name with `next(current)`, in one transaction so replicas count every failure. */
  recordFailure(
    name: string,
    next: (current: SignInFailures | undefined) => SignInFailures,
  ): Promise<SignInFailures>;
  /** Forgets the failures of a name (after a successful sign-in). */
  clearFailures(name: string): Promise<void>;
}
