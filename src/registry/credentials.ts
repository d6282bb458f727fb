/**
 * Secrets handed to operators and devices. Only their SHA-256 is stored: they are 256-bit random values,
 * so a fast hash is enough and keeps authentication off the heartbeat's critical path.
 *
 * Nothing here caches a decision: a presented secret is hashed on every request (half a microsecond) and
 * the hash is compared with the one stored, read in the same write as the heartbeat, so a credential
 * replaced or revoked, or a device decommissioned, on any replica is refused from the next write on.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

export type SecretKind = 'admin' | 'api' | 'enroll' | 'device' | 'session';

export function newSecret(kind: SecretKind): string {
  return `fld_${kind}_${randomBytes(32).toString('base64url')}`;
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(9).toString('base64url')}`;
}

export function hashSecret(secret: string): string {
  // The one-shot form: a fifth of createHash().update().digest()'s cost, which builds a Hash object.
  return hash('sha256', secret, 'hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}

/**
 * A device credential names its device (`<device id>.<secret>`), so the server finds the one hash to
 * compare without a lookup by secret, and a device can only ever speak for itself.
 */
export function deviceCredential(deviceId: string): string {
  return `${deviceId}.${newSecret('device')}`;
}

export function splitDeviceCredential(credential: string): { deviceId: string; secret: string } | undefined {
  const at = credential.lastIndexOf('.fld_device_');
  if (at <= 0) return undefined;
  return { deviceId: credential.slice(0, at), secret: credential.slice(at + 1) };
}
