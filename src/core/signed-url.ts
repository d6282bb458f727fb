/**
 * Signed, expiring artifact URLs (docs/serving-artifacts.md): a cache or CDN in front serves the bytes to any
 * holder of an unexpired link without knowing device credentials, and FleetD (or nginx, or the CDN's edge)
 * checks the link. Two forms, one secret:
 * - `nginx`: nginx's own `secure_link_md5 "$secure_link_expires$uri $secret"` check, `?md5=…&expires=…` —
 *   nginx verifies it with no code of ours. MD5 over the secret is what nginx offers, not an HMAC.
 * - `hmac`: HMAC-SHA256 over `expires` and the path, `?expires=…&sig=…` — for CDNs whose edge functions
 *   compute an HMAC (and FleetD itself).
 * Both compare in constant time and fail closed: no signature, a malformed one, or an expired link is refused.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type SignedUrlForm = 'nginx' | 'hmac';

const b64url = (bytes: Buffer) => bytes.toString('base64url');

function expected(form: SignedUrlForm, path: string, expires: number, secret: string): string {
  if (form === 'nginx') return b64url(createHash('md5').update(`${expires}${path} ${secret}`).digest());
  return b64url(createHmac('sha256', secret).update(`${expires}\n${path}`).digest());
}

/** The query string that makes `path` downloadable until `expiresAtMs` (rounded down to the second). */
export function signPath(form: SignedUrlForm, path: string, expiresAtMs: number, secret: string): string {
  const expires = Math.floor(expiresAtMs / 1000);
  const signature = expected(form, path, expires, secret);
  return form === 'nginx'
    ? `${path}?md5=${signature}&expires=${expires}`
    : `${path}?expires=${expires}&sig=${signature}`;
}

export type SignedUrlVerdict = 'ok' | 'missing' | 'expired' | 'bad_signature';

/** Whether a request for `path` with this query may have the bytes at `nowMs`. */
export function checkSignedPath(
  form: SignedUrlForm,
  path: string,
  query: { expires?: string | undefined; md5?: string | undefined; sig?: string | undefined },
  nowMs: number,
  secret: string,
): SignedUrlVerdict {
  const given = form === 'nginx' ? query.md5 : query.sig;
  if (given === undefined || query.expires === undefined || !/^\d{1,12}$/.test(query.expires))
    return 'missing';
  const expires = Number(query.expires);
  const want = Buffer.from(expected(form, path, expires, secret));
  const got = Buffer.from(given);
  // Checked before the expiry, so an attacker learns nothing about a link from which answer comes back.
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'bad_signature';
  return expires * 1000 <= nowMs ? 'expired' : 'ok';
}
