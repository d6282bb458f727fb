/**
 * Who is signed in. A user signs in with name and password: the server keeps the session and the browser an
 * HttpOnly cookie this script cannot read; the script keeps only the CSRF token its changes must carry, and
 * the principal (role, permissions), to hide what the role may not do. An API token, the other way in, is
 * kept for this browser tab only (sessionStorage): closing the tab signs out.
 */
import type { SessionJsonType } from '../../src/protocol/access.js';

export type Principal = SessionJsonType['principal'];

const KEY = 'fleetd.token';
const listeners = new Set<() => void>();
let current: { principal: Principal; csrf: string | null } | null = null;

export function getToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export const getPrincipal = (): Principal | null => current?.principal ?? null;
export const getCsrfToken = (): string | null => current?.csrf ?? null;

/** What the signed-in principal may do; the server checks it again, this only hides what would be refused. */
export const can = (permission: string): boolean =>
  current?.principal.permissions.includes(permission) ?? false;

function changed(): void {
  for (const listener of listeners) listener();
}

/** Keeps a session the server answered (sign-in, or GET /api/v1/session on load). */
export function setSession(session: SessionJsonType | null, token: string | null = getToken()): void {
  if (token === null || session === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, token);
  current = session && { principal: session.principal, csrf: session.csrf_token };
  changed();
}

/** Forgets the session here (after sign-out, or a 401). */
export function clearSession(): void {
  setSession(null, null);
}

export function onSessionChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
