/**
 * Calls to the operator API, signed in by the session cookie (changes carry its CSRF token) or by an API
 * token; errors keep the API's code and message.
 */
import { clearSession, getCsrfToken, getToken } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface CallOptions {
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is (application/octet-stream): an artifact upload. */
  raw?: Blob;
  signal?: AbortSignal;
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export function withQuery(path: string, query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  const token = getToken();
  const method = options.method ?? 'GET';
  const csrf = token || method === 'GET' ? null : getCsrfToken();
  const response = await fetch(path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(csrf ? { 'x-csrf-token': csrf } : {}),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.raw === undefined ? {} : { 'content-type': 'application/octet-stream' }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    ...(options.raw === undefined ? {} : { body: options.raw }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page): reported below with the status alone.
  }
  if (!response.ok) {
    const error = (
      json as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null
    )?.error;
    // A revoked token or an ended session: back to the sign-in form rather than a page of errors.
    if (response.status === 401) clearSession();
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? `${response.status} ${response.statusText}`,
      error?.details,
    );
  }
  return json as T;
}

export const isAbort = (error: unknown) => error instanceof DOMException && error.name === 'AbortError';
