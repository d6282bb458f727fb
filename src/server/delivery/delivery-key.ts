/**
 * The key the server signs in with on agentless devices (docs/agentless.md): one Ed25519 key pair, made on first
 * use in `<data>/delivery/`. The private key is kept encrypted (OpenSSH format, bcrypt KDF) under a passphrase
 * read from its own file — by default a generated one beside it (0600), which the operator may keep elsewhere
 * (`--delivery-key-passphrase-file`, e.g. a secret mount) so a copy of the data folder alone does not open it.
 * Neither the key nor the passphrase is ever in the database, a log line, an event or an answer; only the
 * public key is shown (for the devices' authorized_keys).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
// ssh2 is CommonJS: Node's ESM loader gives only its default export (named imports fail at run time).
import ssh2, { type ParsedKey } from 'ssh2';
import { FleetError } from '../../core/errors.js';
import { writeSecretFile } from '../secret-file.js';

export const DELIVERY_DIR = 'delivery';
const PRIVATE_FILE = 'ssh_key';
const PUBLIC_FILE = 'ssh_key.pub';
const PASSPHRASE_FILE = 'ssh_key.passphrase';

/** The tries at making a key pair ssh2 reads back (see `ensure`). */
const MAKE_TRIES = 5;

/** The private key, decrypted in memory only (as any SSH client holds it while it signs in). */
export interface DeliveryCredentials {
  privateKey: ParsedKey;
}

export class DeliveryKey {
  private readonly dir: string;
  private readonly passphraseFile: string;
  /** Decrypted once: the bcrypt KDF that protects the file costs about a second each time. */
  private opened: ParsedKey | undefined;

  constructor(dataDir: string, passphraseFile?: string) {
    this.dir = join(dataDir, DELIVERY_DIR);
    this.passphraseFile = passphraseFile ?? join(this.dir, PASSPHRASE_FILE);
  }

  /** The public key (`ssh-ed25519 AAAA… fleetd`), made with its private key on first use. */
  publicKey(): string {
    this.ensure();
    return readFileSync(join(this.dir, PUBLIC_FILE), 'utf8').trim();
  }

  /** What the SSH client needs; checked here, so a wrong passphrase fails before any device is contacted. */
  credentials(): DeliveryCredentials {
    this.ensure();
    if (this.opened === undefined) {
      const parsed = open(readFileSync(join(this.dir, PRIVATE_FILE), 'utf8'), this.readPassphrase());
      if (parsed instanceof Error) {
        // The parser's message never contains the key or the passphrase.
        throw new FleetError(
          'INTERNAL',
          `the delivery SSH key cannot be opened with its passphrase: ${parsed.message}`,
        );
      }
      this.opened = parsed;
    }
    return { privateKey: this.opened };
  }

  private readPassphrase(): string {
    const text = readFileSync(this.passphraseFile, 'utf8').trim();
    if (text.length < 16) {
      throw new FleetError('VALIDATION', `the delivery key passphrase file holds fewer than 16 characters`);
    }
    return text;
  }

  private ensure(): void {
    if (existsSync(join(this.dir, PRIVATE_FILE))) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!existsSync(this.passphraseFile))
      writeSecretFile(this.passphraseFile, randomBytes(32).toString('base64url'));
    const passphrase = this.readPassphrase();
    // ssh2 1.17 writes the odd encrypted key its own parser calls malformed (about 1 in 300 here): only a key
    // that reads back is kept.
    for (let attempt = 1; ; attempt++) {
      const pair = ssh2.utils.generateKeyPairSync('ed25519', {
        comment: 'fleetd-delivery',
        passphrase,
        cipher: 'aes256-ctr',
        rounds: 16,
      });
      const parsed = open(pair.private, passphrase);
      if (parsed instanceof Error) {
        if (attempt < MAKE_TRIES) continue;
        throw new FleetError('INTERNAL', `could not make a delivery SSH key: ${parsed.message}`);
      }
      this.opened = parsed;
      writeSecretFile(join(this.dir, PUBLIC_FILE), `${pair.public}\n`);
      writeSecretFile(join(this.dir, PRIVATE_FILE), pair.private);
      return;
    }
  }
}

function open(privateKey: string, passphrase: string): ParsedKey | Error {
  const parsed = ssh2.utils.parseKey(privateKey, passphrase);
  return Array.isArray(parsed) ? (parsed[0] ?? new Error('no key in the file')) : parsed;
}
