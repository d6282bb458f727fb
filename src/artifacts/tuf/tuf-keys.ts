/**
 * Ed25519 keys in TUF's form (keytype and scheme `ed25519`, the raw 32-byte public key in hex) and signers
 * over node:crypto. A key's id is the sha256 of its canonical JSON, as the TUF specification defines it, so
 * any TUF client computes the same id.
 */
import { createHash, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Signature } from '@tufjs/models';
import { FleetError } from '../../core/errors.js';
import { generateKeyPair, readPrivateKeyFile, writeNew } from '../signing.js';

export type Signer = (data: Buffer) => Signature;

/** The public half of an Ed25519 key as a TUF key (its id computed from its canonical JSON). */
export function tufKey(publicKey: KeyObject): Key {
  const jwk = publicKey.export({ format: 'jwk' });
  if (publicKey.asymmetricKeyType !== 'ed25519' || typeof jwk.x !== 'string') {
    throw new FleetError('VALIDATION', 'TUF keys must be Ed25519 keys');
  }
  const keyVal = { public: Buffer.from(jwk.x, 'base64url').toString('hex') };
  const body = { keytype: 'ed25519', scheme: 'ed25519', keyval: keyVal };
  const keyID = createHash('sha256').update(canonicalize(body)).digest('hex');
  return new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal: keyVal });
}

export function signerFor(privateKey: KeyObject): { keyId: string; sign: Signer } {
  const { keyID } = tufKey(createPublicKey(privateKey));
  return {
    keyId: keyID,
    sign: (data) => new Signature({ keyID, sig: sign(null, data, privateKey).toString('hex') }),
  };
}

/** Makes a new Ed25519 key file (PKCS#8 PEM, mode 0600); never overwrites one. */
export async function writeNewTufKey(path: string): Promise<Key> {
  const pair = generateKeyPair();
  await writeNew(path, pair.privateKeyPem, 0o600);
  return tufKey(createPublicKey(pair.privateKeyPem));
}

export async function readTufSigner(path: string): Promise<{ keyId: string; sign: Signer }> {
  return signerFor(await readPrivateKeyFile(path));
}
