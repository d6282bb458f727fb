/**
 * The one door to @peculiar/x509: its dependency injection needs the Reflect polyfill loaded before it, and it
 * must sign and verify with Node's own webcrypto. Every pki module imports the library from here.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Node's webcrypto is the standard Crypto; the library's types name the DOM's, which this project does not load.
type LibraryCrypto = ReturnType<typeof x509.cryptoProvider.get>;
x509.cryptoProvider.set(webcrypto as unknown as LibraryCrypto);

export { webcrypto, x509 };

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** ECDSA with SHA-256 over P-256: the FleetD CA's key and signatures. */
export const CA_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const CA_SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** PEM with the given label around DER bytes. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  return `${x509.PemConverter.encode(der instanceof Uint8Array ? der : new Uint8Array(der), label)}\n`;
}

/** A random positive serial of 16 bytes, lowercase hex; the top bit is cleared and the first byte never 0 so DER keeps all 16. */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}
