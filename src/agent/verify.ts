/**
 * Checks made before anything is installed, each failing with the short reason the device reports.
 * The signature is checked over the manifest's exact bytes first; nothing in the manifest is believed,
 * not even parsed, until it holds.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';
import { type Manifest, parseManifest as parseSignedManifest } from '../core/manifest.js';
import { compareVersions, parseVersion, parseVersionLenient } from '../core/semver.js';

export type { Manifest };

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

/** The manifest's fields, checked by the same rules the server signs with; the reason names the bad field. */
export function parseManifest(text: string): Verdict<Manifest> {
  try {
    return ok(parseSignedManifest(text));
  } catch (error) {
    return no(error instanceof Error ? error.message : 'manifest invalid');
  }
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

/**
 * Whether a file of this length and sha256 is the one a TUF target entry signs (the image repository's and the
 * director's alike). Fails closed: an entry without a sha256 matches nothing.
 */
export function verifyTarget(
  target: { length: number; hashes: Record<string, string> },
  file: { size: number; sha256: string },
): boolean {
  const sha256 = target.hashes.sha256?.toLowerCase();
  return sha256 !== undefined && target.length === file.size && file.sha256.toLowerCase() === sha256;
}

/** The running version may be a device's own loose `2.3`; the manifest's is strict SemVer. */
function isDowngrade(installed: string | undefined, next: string): boolean {
  if (installed === undefined) return false;
  const from = parseVersionLenient(installed);
  const to = parseVersion(next);
  return from !== undefined && to !== undefined && compareVersions(to, from) < 0;
}
