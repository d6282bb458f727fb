/** A device's side of enrollment: a fresh key pair and a CSR naming the device, signed by that key. */
import {
  CA_KEY_ALGORITHM,
  CA_SIGNING_ALGORITHM,
  type CryptoKeyPair,
  toPem,
  webcrypto,
  x509,
} from './x509.js';

export type DeviceKeyType = 'ecdsa-p256' | 'ed25519';

/** The private key (PKCS#8 PEM) stays with the caller; only the CSR is sent. */
export async function createDeviceCsr(
  deviceId: string,
  keyType: DeviceKeyType = 'ecdsa-p256',
): Promise<{ csrPem: string; privateKeyPem: string }> {
  const algorithm = keyType === 'ed25519' ? { name: 'Ed25519' } : CA_KEY_ALGORITHM;
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [deviceId] }],
    keys,
    signingAlgorithm: keyType === 'ed25519' ? { name: 'Ed25519' } : CA_SIGNING_ALGORITHM,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { csrPem: toPem(csr.rawData, 'CERTIFICATE REQUEST'), privateKeyPem: toPem(pkcs8, 'PRIVATE KEY') };
}
