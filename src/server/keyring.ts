/**
 * The keys the server signs releases with and trusts signatures from. The server's own key pair is made on
 * first start (`<data>/signing.key`, mode 0600) unless the operator keeps signing offline
 * (`--no-server-signing`): then only manifests signed with a trusted key (`--trusted-key FILE`) are accepted.
 */

import type { KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  keyId,
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  readPrivateKeyFile,
  readPublicKeyFile,
  signManifest,
  verifyManifest,
  writeKeyPairFiles,
} from '../artifacts/signing.js';
import { FleetError } from '../core/errors.js';

export interface TrustedKey {
  keyId: string;
  publicKey: KeyObject;
  source: string;
}

export class Keyring {
  constructor(
    private readonly signer: { privateKey: KeyObject; keyId: string } | null,
    readonly trusted: TrustedKey[],
  ) {}

  static async open(options: {
    dataDir: string;
    serverSigning: boolean;
    trustedKeyFiles: string[];
  }): Promise<Keyring> {
    const trusted: TrustedKey[] = [];
    let signer: { privateKey: KeyObject; keyId: string } | null = null;
    if (options.serverSigning) {
      if (!existsSync(join(options.dataDir, PRIVATE_KEY_FILE))) await writeKeyPairFiles(options.dataDir);
      const privateKey = await readPrivateKeyFile(join(options.dataDir, PRIVATE_KEY_FILE));
      const publicKey = await readPublicKeyFile(join(options.dataDir, PUBLIC_KEY_FILE));
      signer = { privateKey, keyId: keyId(publicKey) };
      trusted.push({ keyId: signer.keyId, publicKey, source: 'server' });
    }
    for (const file of options.trustedKeyFiles) {
      const publicKey = await readPublicKeyFile(file);
      trusted.push({ keyId: keyId(publicKey), publicKey, source: file });
    }
    return new Keyring(signer, trusted);
  }

  /** Whether this server holds a signing key (not `--no-server-signing`). */
  get canSign(): boolean {
    return this.signer !== null;
  }

  sign(manifest: string): { signature: string; keyId: string } {
    if (!this.signer) {
      throw new FleetError(
        'VALIDATION',
        'this server does not sign releases (--no-server-signing): upload a manifest signed offline with `fleetd artifact sign`',
      );
    }
    return { signature: signManifest(manifest, this.signer.privateKey), keyId: this.signer.keyId };
  }

  /** The id of the trusted key that made this signature. */
  verify(manifest: string, signature: string): string {
    const key = this.trusted.find((k) => verifyManifest(manifest, signature, k.publicKey));
    if (!key)
      throw new FleetError(
        'VALIDATION',
        'the manifest signature does not verify with any key this server trusts',
      );
    return key.keyId;
  }
}
