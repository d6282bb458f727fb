/**
 * Ed25519 signatures over manifest text, with node:crypto only. Keys travel as PEM (SPKI public, PKCS#8
 * private), the forms `openssl genpkey -algorithm ed25519` writes, so a pipeline may use either tool.
 * A signature is the base64 of the raw 64 bytes Ed25519 produces over the manifest's UTF-8 bytes.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetError } from '../core/errors.js';

export interface KeyPairPem {
  publicKeyPem: string;
  privateKeyPem: string;
}

/** File names `fleetd keys generate --out DIR` writes. */
export const PRIVATE_KEY_FILE = 'signing.key';
export const PUBLIC_KEY_FILE = 'signing.pub';

// Exactly 64 bytes of canonical base64: Buffer.from(…, 'base64') alone skips junk characters.
const SIGNATURE_B64 = /^[A-Za-z0-9+/]{86}==$/;

export function generateKeyPair(): KeyPairPem {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

export function signManifest(manifestText: string, privateKey: string | KeyObject): string {
  return sign(null, Buffer.from(manifestText, 'utf8'), toPrivateKey(privateKey)).toString('base64');
}

/** False for a bad or malformed signature; throws only when the key itself is unusable. */
export function verifyManifest(
  manifestText: string,
  signatureB64: string,
  publicKey: string | KeyObject,
): boolean {
  const key = toPublicKey(publicKey);
  if (!SIGNATURE_B64.test(signatureB64)) return false;
  const signature = Buffer.from(signatureB64, 'base64');
  // Padding bits that decode to the same bytes would make two texts for one signature.
  if (signature.toString('base64') !== signatureB64) return false;
  return verify(null, Buffer.from(manifestText, 'utf8'), key, signature);
}

/** A short stable name for a public key: the first 16 hex characters of the sha256 of its SPKI DER. */
export function keyId(publicKey: string | KeyObject): string {
  const der = toPublicKey(publicKey).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export async function readPrivateKeyFile(path: string): Promise<KeyObject> {
  return toPrivateKey(await readKeyFile(path), `key file ${path}`);
}

export async function readPublicKeyFile(path: string): Promise<KeyObject> {
  return toPublicKey(await readKeyFile(path), `key file ${path}`);
}

/**
 * Writes a new pair as DIR/signing.key (mode 0600) and DIR/signing.pub. Never overwrites: replacing a
 * key that devices are pinned to would strand them, so that must be a deliberate act.
 */
export async function writeKeyPairFiles(dir: string): Promise<KeyPairPem & { keyId: string }> {
  const pair = generateKeyPair();
  await mkdir(dir, { recursive: true });
  const privatePath = join(dir, PRIVATE_KEY_FILE);
  await writeNew(privatePath, pair.privateKeyPem, 0o600);
  try {
    await writeNew(join(dir, PUBLIC_KEY_FILE), pair.publicKeyPem, 0o644);
  } catch (e) {
    await rm(privatePath, { force: true }); // a private key without its public half is of no use
    throw e;
  }
  return { ...pair, keyId: keyId(pair.publicKeyPem) };
}

function toPrivateKey(input: string | KeyObject, what = 'the signing key'): KeyObject {
  let key = input;
  if (typeof key === 'string') {
    if (/-----BEGIN [A-Z ]*PUBLIC KEY-----/.test(key)) {
      throw new FleetError('VALIDATION', `${what} is not an Ed25519 private key (found a public key)`);
    }
    try {
      key = createPrivateKey(key);
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why =
        code === 'ERR_MISSING_PASSPHRASE'
          ? 'is encrypted; FleetD needs an unencrypted key'
          : 'is not a PEM private key';
      throw new FleetError('VALIDATION', `${what} ${why}`, undefined, { cause: e });
    }
  }
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
    throw new FleetError('VALIDATION', `${what} is not an Ed25519 private key (${describe(key)})`);
  }
  return key;
}

function toPublicKey(input: string | KeyObject, what = 'the public key'): KeyObject {
  let key = input;
  if (typeof key === 'string') {
    // createPublicKey would quietly derive the public half of a private key; refuse to handle one here.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
      throw new FleetError('VALIDATION', `${what} is a private key; give the public key (signing.pub)`);
    }
    try {
      key = createPublicKey(key);
    } catch {
      throw new FleetError('VALIDATION', `${what} is not a PEM public key`);
    }
  }
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') {
    throw new FleetError('VALIDATION', `${what} is not an Ed25519 public key (${describe(key)})`);
  }
  return key;
}

const describe = (key: KeyObject) => `found ${key.asymmetricKeyType ?? 'a symmetric'} ${key.type} key`;

async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FleetError(
      'VALIDATION',
      `key file ${path} cannot be read (${code ?? (e as Error).message})`,
      undefined,
      {
        cause: e,
      },
    );
  }
}

export async function writeNew(path: string, text: string, mode: number): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FleetError(
        'CONFLICT',
        `${path} exists already; move it away to generate a new key pair`,
        undefined,
        {
          cause: e,
        },
      );
    }
    throw e;
  }
  try {
    await handle.chmod(mode); // the umask may have changed `open`'s mode
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
