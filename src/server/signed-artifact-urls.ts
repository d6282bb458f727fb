/**
 * Signed, expiring artifact URLs (docs/serving-artifacts.md, "From a cache or CDN"): with them set, the heartbeat
 * hands each device a link on the cache's origin instead of the device API's download, and the cache (nginx's
 * secure_link, a CDN's edge, or FleetD's own `/cache/v1/artifacts/…`) serves the bytes to whoever holds an
 * unexpired link, with no device credential. The agent sends its credential only to its own server.
 */
import { readFileSync } from 'node:fs';
import { FleetError } from '../core/errors.js';
import { type SignedUrlForm, signPath } from '../core/signed-url.js';
import type { PendingUpdateJson } from '../protocol/device-api.js';

export const CACHE_PREFIX = '/cache/v1/artifacts';

export interface SignedArtifactUrls {
  /** The cache's origin devices download from, e.g. `https://cdn.example.com` (FleetD's own origin works too). */
  baseUrl: string;
  secret: string;
  form: SignedUrlForm;
  /** How long a link lasts (default 6 h: long enough for a slow download to resume within it). */
  ttlMs: number;
}

/** Reads the secret from its file (never from a flag: it would show in `ps`). */
export function signedArtifactUrls(options: {
  baseUrl: string;
  secretFile: string;
  form?: SignedUrlForm;
  ttlMs?: number;
}): SignedArtifactUrls {
  const secret = readFileSync(options.secretFile, 'utf8').trim();
  if (secret.length < 32) {
    throw new FleetError(
      'VALIDATION',
      `${options.secretFile}: the URL signing secret needs 32 characters or more`,
    );
  }
  const base = new URL(options.baseUrl);
  // The signature covers the path from the origin on (nginx's $uri): a prefix would break the check.
  if (base.username !== '' || base.password !== '' || base.search !== '' || base.pathname !== '/') {
    throw new FleetError(
      'VALIDATION',
      '--artifact-base-url: an origin only (https://cdn.example.com), no path or credentials',
    );
  }
  return {
    baseUrl: base.toString().replace(/\/+$/, ''),
    secret,
    form: options.form ?? 'nginx',
    ttlMs: options.ttlMs ?? 6 * 3600_000,
  };
}

export const cachePath = (sha256: string) => `${CACHE_PREFIX}/${sha256}`;

/**
 * When a link made now expires: the end of the next half-TTL step, so it lasts from half the TTL to the whole
 * of it, and every heartbeat within one step gets the same link — the agent resumes a download only from the
 * same URL, and a cache keyed on the full URL keeps one copy.
 */
export function linkExpiry(now: number, ttlMs: number): number {
  const step = Math.max(1000, Math.floor(ttlMs / 2));
  return (Math.floor(now / step) + 2) * step;
}

/** The offers with their downloads moved to signed links on the cache. Deltas stay on the server. */
export function withSignedUrls(
  signed: SignedArtifactUrls | undefined,
  now: number,
  json: PendingUpdateJson[],
): PendingUpdateJson[] {
  if (!signed) return json;
  return json.map((pending) => {
    const sha256 = /\/artifacts\/([0-9a-f]{64})$/.exec(pending.download_url)?.[1];
    if (sha256 === undefined) return pending;
    const link = signPath(signed.form, cachePath(sha256), linkExpiry(now, signed.ttlMs), signed.secret);
    return { ...pending, download_url: `${signed.baseUrl}${link}` };
  });
}
