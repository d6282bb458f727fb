/**
 * Checks made before anything is installed, each failing with the short reason the device reports.
 * The signature is checked over the manifest's exact bytes first; nothing in the manifest is believed,
 * not even parsed, until it holds.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { compareVersions, parseVersion, parseVersionLenient } from '../core/semver.js';

export const RELEASE_TYPES = ['firmware', 'file', 'archive', 'script', 'app'] as const;
export type ReleaseType = (typeof RELEASE_TYPES)[number];

export interface Manifest {
  name: string;
  version: string;
  type: ReleaseType;
  hardware: string[];
  size: number;
  sha256: string;
  created: string;
  allow_downgrade: boolean;
}

export type Verdict<T = undefined> = { ok: true; value: T } | { ok: false; reason: string };

const ok = <T>(value: T): Verdict<T> => ({ ok: true, value });
const no = <T>(reason: string): Verdict<T> => ({ ok: false, reason });

/** The key devices are provisioned with: a PEM (SPKI) file, or the raw 32-byte key in base64. */
export function loadPublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  let key: KeyObject;
  if (trimmed.includes('-----BEGIN')) {
    key = createPublicKey(trimmed);
  } else {
    const bytes = Buffer.from(trimmed, 'base64');
    key =
      bytes.length === 32
        ? createPublicKey({
            key: { kty: 'OKP', crv: 'Ed25519', x: bytes.toString('base64url') },
            format: 'jwk',
          })
        : createPublicKey({ key: bytes, format: 'der', type: 'spki' });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`the public key is ${key.asymmetricKeyType ?? 'unknown'}, expected an Ed25519 key`);
  }
  return key;
}

export function signatureValid(manifest: string, signature: string, key: KeyObject): boolean {
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, Buffer.from(manifest, 'utf8'), key, sig);
  } catch {
    return false;
  }
}

export function parseManifest(text: string): Verdict<Manifest> {
  let m: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return no('manifest invalid: not an object');
    m = parsed as Record<string, unknown>;
  } catch {
    return no('manifest invalid: not JSON');
  }
  const bad = (field: string) => no<Manifest>(`manifest invalid: ${field}`);
  if (typeof m.name !== 'string' || m.name === '') return bad('name');
  if (typeof m.version !== 'string' || parseVersion(m.version) === undefined) return bad('version');
  if (!RELEASE_TYPES.includes(m.type as ReleaseType)) return bad('type');
  if (!Array.isArray(m.hardware) || !m.hardware.every((h) => typeof h === 'string')) return bad('hardware');
  if (typeof m.size !== 'number' || !Number.isSafeInteger(m.size) || m.size < 0) return bad('size');
  if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(m.sha256)) return bad('sha256');
  if (typeof m.created !== 'string') return bad('created');
  if (m.allow_downgrade !== undefined && typeof m.allow_downgrade !== 'boolean')
    return bad('allow_downgrade');
  return ok({
    name: m.name,
    version: m.version,
    type: m.type as ReleaseType,
    hardware: m.hardware as string[],
    size: m.size,
    sha256: m.sha256.toLowerCase(),
    created: m.created,
    allow_downgrade: m.allow_downgrade === true,
  });
}

export interface ReleaseContext {
  publicKey: KeyObject;
  hardwareType: string;
  /** The version running now; anti-rollback does not apply when unknown or not semver. */
  installedVersion: string | undefined;
}

/** Everything that can be checked before downloading: signature, manifest, hardware, anti-rollback. */
export function verifyRelease(manifest: string, signature: string, ctx: ReleaseContext): Verdict<Manifest> {
  if (!signatureValid(manifest, signature, ctx.publicKey)) return no('signature mismatch');
  const parsed = parseManifest(manifest);
  if (!parsed.ok) return parsed;
  const m = parsed.value;
  if (!m.hardware.includes(ctx.hardwareType))
    return no(`hardware ${ctx.hardwareType} not in [${m.hardware.join(', ')}]`);
  if (isDowngrade(ctx.installedVersion, m.version) && !m.allow_downgrade) {
    return no(`downgrade ${ctx.installedVersion} → ${m.version} refused`);
  }
  return parsed;
}

/** The downloaded file against the (verified) manifest. */
export function verifyArtifact(m: Manifest, file: { size: number; sha256: string }): Verdict {
  if (file.size !== m.size) return no(`size mismatch: expected ${m.size} bytes, got ${file.size}`);
  if (file.sha256.toLowerCase() !== m.sha256) return no('sha256 mismatch');
  return ok(undefined);
}

/** The running version may be a device's own loose `2.3`; the manifest's is strict SemVer. */
function isDowngrade(installed: string | undefined, next: string): boolean {
  if (installed === undefined) return false;
  const from = parseVersionLenient(installed);
  const to = parseVersion(next);
  return from !== undefined && to !== undefined && compareVersions(to, from) < 0;
}
