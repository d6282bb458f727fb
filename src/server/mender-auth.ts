/**
 * Who a Mender device request comes from (docs/clients/mender.md). mender-client proves itself with its key pair:
 * its auth request is signed (X-MEN-Signature) over the raw body, which carries its identity and public key. An
 * accepted device gets a JWT (HS256, the server's key in `<data>/mender-token.key`, shared by replicas through the
 * data folder) naming the device and its key. Its FleetD credential is derived from both with that key and never
 * leaves the server: only its hash is stored, so a heartbeat or a decommission works as for any device, and a
 * device that comes back with another key is a stranger.
 */
import { createHash, createHmac, createPublicKey, type KeyObject, randomBytes, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jwtVerify, SignJWT } from 'jose';
import { FleetError } from '../core/errors.js';
import { hashSecret, secretMatches } from '../registry/credentials.js';
import { type ServerContext, timeContext } from './context.js';
import { writeSecretFile } from './secret-file.js';

export const MENDER_TOKEN_KEY_FILE = 'mender-token.key';
/** The tag every mender-client device carries in the registry. */
export const MENDER_CLIENT_TAG = { client: 'mender' } as const;
/** How long a device token is good for; the client asks for another on a 401 (and at every commit). */
const TOKEN_TTL_SEC = 24 * 3600;
const ISSUER = 'fleetd';
const REFUSED = 'the device token is unknown, expired or no longer valid: authenticate again';

/** The server's token key, made on first start (0600, from its first byte); every replica reads the same file. */
export function menderTokenKey(dataDir: string): Uint8Array {
  const file = join(dataDir, MENDER_TOKEN_KEY_FILE);
  if (!existsSync(file)) {
    try {
      writeSecretFile(file, `${randomBytes(32).toString('base64')}\n`);
    } catch {
      // Another replica made it at the same moment: read theirs.
    }
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length < 32) throw new Error(`${file} holds no key of 32 bytes: delete it to make a new one`);
  return key;
}

export interface MenderIdentity {
  deviceId: string;
  /** id_data's attributes, values of several entries joined with ','. */
  attributes: Record<string, string>;
  /** SHA-256 (hex) of the public key (SPKI DER). */
  keyFingerprint: string;
  /** The tenant token sent (FleetD: an enrollment token), or '' when none. */
  tenantToken: string;
}

/**
 * The auth request, its signature checked over the raw bytes (the client signs its JSON encoder's output, trailing
 * newline included): RSA PKCS#1 v1.5 or ECDSA (DER) over SHA-256, or Ed25519.
 */
export function checkAuthRequest(
  raw: Buffer,
  signatureHeader: unknown,
  authorization: unknown,
): MenderIdentity {
  let body: { id_data?: unknown; pubkey?: unknown; tenant_token?: unknown };
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new FleetError('VALIDATION', 'the auth request is not JSON');
  }
  if (typeof body.id_data !== 'string' || typeof body.pubkey !== 'string') {
    throw new FleetError('VALIDATION', 'the auth request needs "id_data" and "pubkey" strings');
  }
  let key: KeyObject;
  try {
    key = createPublicKey(body.pubkey);
  } catch {
    throw new FleetError('VALIDATION', '"pubkey" is not a PEM public key');
  }
  if (typeof signatureHeader !== 'string' || signatureHeader === '') {
    throw new FleetError('UNAUTHENTICATED', 'the auth request has no X-MEN-Signature');
  }
  const algorithm = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  let valid = false;
  try {
    valid = verify(algorithm, raw, key, Buffer.from(signatureHeader, 'base64'));
  } catch {
    valid = false;
  }
  if (!valid) throw new FleetError('UNAUTHENTICATED', 'X-MEN-Signature does not verify with "pubkey"');
  const attributes = identityAttributes(body.id_data);
  const canonical = JSON.stringify(
    Object.fromEntries(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b))),
  );
  const bearer = typeof authorization === 'string' ? /^Bearer (\S+)$/.exec(authorization)?.[1] : undefined;
  return {
    deviceId: `mender-${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`,
    attributes,
    keyFingerprint: createHash('sha256')
      .update(key.export({ type: 'spki', format: 'der' }))
      .digest('hex'),
    tenantToken:
      typeof body.tenant_token === 'string' && body.tenant_token !== '' ? body.tenant_token : (bearer ?? ''),
  };
}

/** id_data is a JSON string holding an object of strings (or arrays of them, for a key given several times). */
function identityAttributes(idData: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(idData);
  } catch {
    throw new FleetError('VALIDATION', '"id_data" is not a JSON object');
  }
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    Array.isArray(parsed) ||
    Object.keys(parsed).length === 0
  ) {
    throw new FleetError('VALIDATION', '"id_data" must be a JSON object with at least one attribute');
  }
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    attributes[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return attributes;
}

/** The device's FleetD credential: derived, never sent anywhere; the store keeps its hash. */
export function menderSecret(c: ServerContext, deviceId: string, keyFingerprint: string): string {
  return createHmac('sha256', tokenKey(c))
    .update(`mender-device\n${deviceId}\n${keyFingerprint}`)
    .digest('base64url');
}

function tokenKey(c: ServerContext): Uint8Array {
  if (!c.menderTokenKey)
    throw new FleetError('NOT_FOUND', 'the Mender device API is not enabled on this server');
  return c.menderTokenKey;
}

/** Whether the device (by its key) is enrolled already. */
export async function knownDevice(c: ServerContext, identity: MenderIdentity): Promise<boolean> {
  const stored = await c.store.credentialHash(identity.deviceId);
  return (
    stored !== null &&
    stored !== undefined &&
    secretMatches(menderSecret(c, identity.deviceId, identity.keyFingerprint), stored)
  );
}

/**
 * Enrolls a new device: with its tenant token as enrollment token, or else through the approval queue
 * (`--enrollment approve`). Throws while it waits (401: the client asks again) and when it is refused.
 */
export async function admitDevice(c: ServerContext, identity: MenderIdentity): Promise<void> {
  const credentialHash = hashSecret(menderSecret(c, identity.deviceId, identity.keyFingerprint));
  const device = { id: identity.deviceId, tags: { ...identity.attributes, ...MENDER_CLIENT_TAG } };
  if (identity.tenantToken !== '') {
    await c.store.enroll(
      { tokenHash: hashSecret(identity.tenantToken), credentialHash, device },
      timeContext(c),
    );
    return;
  }
  if (c.enrollment !== 'approve') {
    throw new FleetError(
      'ENROLLMENT_INVALID',
      'set TenantToken to an enrollment token: this server does not queue devices for approval',
    );
  }
  const outcome = await c.store.admission.request(
    { device, keyFingerprint: identity.keyFingerprint, credentialHash },
    timeContext(c),
  );
  if (outcome.admission === 'pending') {
    throw new FleetError('UNAUTHENTICATED', `device ${identity.deviceId} waits for an operator to accept it`);
  }
}

/** The token the client sends back as `Authorization: Bearer`. */
export function issueToken(c: ServerContext, identity: MenderIdentity): Promise<string> {
  const now = Math.floor(c.clock.now() / 1000);
  return new SignJWT({ kf: identity.keyFingerprint })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setSubject(identity.deviceId)
    .setIssuedAt(now)
    .setExpirationTime(now + TOKEN_TTL_SEC)
    .sign(tokenKey(c));
}

/** The device a request's token names and the hash of its credential (checked against the store by the caller). */
export async function tokenProof(
  c: ServerContext,
  authorization: unknown,
): Promise<{ deviceId: string; credentialHash: string; secret: string }> {
  const token = typeof authorization === 'string' ? /^Bearer (\S+)$/.exec(authorization)?.[1] : undefined;
  if (!token) throw new FleetError('UNAUTHENTICATED', 'missing "Authorization: Bearer <device token>"');
  let payload: { sub?: string | undefined; kf?: unknown };
  try {
    ({ payload } = await jwtVerify(token, tokenKey(c), {
      issuer: ISSUER,
      algorithms: ['HS256'],
      currentDate: new Date(c.clock.now()),
    }));
  } catch {
    throw new FleetError('UNAUTHENTICATED', REFUSED);
  }
  if (typeof payload.sub !== 'string' || typeof payload.kf !== 'string') {
    throw new FleetError('UNAUTHENTICATED', REFUSED);
  }
  const secret = menderSecret(c, payload.sub, payload.kf);
  return { deviceId: payload.sub, credentialHash: hashSecret(secret), secret };
}

/** For requests that are not a poll: the token, and the device's credential in the store (not decommissioned). */
export async function authenticateMender(c: ServerContext, authorization: unknown): Promise<string> {
  const proof = await tokenProof(c, authorization);
  const stored = await c.store.credentialHash(proof.deviceId);
  if (!stored || !secretMatches(proof.secret, stored)) throw new FleetError('UNAUTHENTICATED', REFUSED);
  return proof.deviceId;
}

/** A signed download link's signature: the client fetches artifacts without any Authorization header. */
export function downloadSignature(c: ServerContext, updateId: string, expires: number): string {
  return createHmac('sha256', tokenKey(c))
    .update(`mender-download\n${updateId}\n${expires}`)
    .digest('base64url');
}
