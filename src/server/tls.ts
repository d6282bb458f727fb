/**
 * TLS for the HTTP listener (API, dashboard, device API): the operator's certificate files, or `auto`, where the
 * FleetD CA in `<data>/pki/` issues one for the names the server is reached by. The listener asks every client
 * for a certificate but lets the handshake finish without one: devices may present theirs (checked by the
 * device authentication, which reads the TLS socket of the request), browsers and the CLI present none.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { ServerOptions as HttpsOptions } from 'node:https';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import { FleetError } from '../core/errors.js';
import {
  type Authority,
  CA_CERTIFICATE_FILE,
  isIssuedBy,
  issueServerCertificate,
  loadOrCreateAuthority,
} from '../pki/authority.js';
import { certificateNames, describeCertificate } from '../pki/describe.js';
import { writeKeyFile, writePublicFile } from '../pki/key-file.js';

/** Where the listener's certificate comes from (`--tls-cert`/`--tls-key`, or `--tls auto` with `--tls-name`). */
export type TlsSource =
  | { kind: 'files'; certFile: string; keyFile: string }
  | { kind: 'auto'; extraNames?: string[] | undefined };

/** The folder of the FleetD CA and the auto-made server certificate, inside the data folder. */
export const PKI_DIR = 'pki';
export const SERVER_CERTIFICATE_FILE = 'server.crt';
export const SERVER_KEY_FILE = 'server.key';
/** An auto-made certificate is made again when less than this is left of it. */
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;

/** What a running TLS listener exposes to the rest of the server. */
export interface ListenerTls {
  /** The certificate the listener presents. */
  certificateFile: string;
  /** The FleetD CA certificate: what clients trust (`--ca`), and the issuer of device certificates. */
  caFile: string;
  /** Whether the listener's certificate was issued by the FleetD CA (`--tls auto`). */
  auto: boolean;
  authority: Authority;
  /** Client certificates from these CAs are accepted too (factory CAs), besides the FleetD CA; at once, no restart. */
  setClientCas(pems: string[]): void;
  /**
   * Serves a new certificate from the next handshake on, true when it did: with `--tls auto` one made again as
   * it nears expiry, with `--tls-cert`/`--tls-key` the files once they changed. No restart for a renewal.
   */
  renewIfDue(now: Date): Promise<boolean>;
  /** What the listener serves now (certificate, key, accepted client CAs): the MQTT broker's TLS follows it. */
  material(): { certificatePem: string; privateKeyPem: string; caPems: string[] };
}

/** The https options for Fastify and, once the server exists, the control over its certificates. */
export interface PreparedTls {
  https: HttpsOptions;
  attach(server: TlsServer): ListenerTls;
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Secure by default: plain HTTP only on the loopback address, unless the operator says otherwise. */
export function assertListenerAllowed(host: string, tls: TlsSource | undefined, insecureHttp: boolean): void {
  if (tls || insecureHttp || isLoopback(host)) return;
  throw new FleetError(
    'VALIDATION',
    `refusing to serve plain HTTP on ${host}: give --tls auto (or --tls-cert and --tls-key), ` +
      'or --insecure-http to accept unencrypted traffic (docs/tls.md)',
  );
}

/** The names a client may reach the server by: the listen address, this machine's names, and the extra ones. */
export function listenNames(host: string, extraNames: string[] = []): string[] {
  const names = [...extraNames];
  if (!WILDCARD.has(host)) names.push(host);
  names.push(hostname(), 'localhost', '127.0.0.1', '::1');
  // Listening on every address: devices may come by any of this machine's addresses (scoped IPv6 ones cannot be named).
  if (WILDCARD.has(host)) {
    for (const address of Object.values(networkInterfaces()).flat()) {
      if (
        address &&
        !address.internal &&
        !address.address.includes('%') &&
        !address.address.startsWith('fe80:')
      )
        names.push(address.address);
    }
  }
  return [...new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n !== ''))];
}

/** Loads (or makes) the FleetD CA and the listener's certificate; nothing listens yet. */
export async function prepareTls(
  source: TlsSource,
  dataDir: string,
  host: string,
  now: Date,
): Promise<PreparedTls> {
  const pkiDir = join(dataDir, PKI_DIR);
  // The operator's files are checked before anything is made.
  const given = source.kind === 'files' ? readPair(source) : undefined;
  const authority = await loadOrCreateAuthority(pkiDir, now);
  const names = source.kind === 'auto' ? listenNames(host, source.extraNames) : [];
  const { certificateFile, keyFile } =
    source.kind === 'files'
      ? { certificateFile: source.certFile, keyFile: source.keyFile }
      : await ensureServerCertificate(authority, pkiDir, names, now);
  let { cert, key } = given ?? {
    cert: readTlsFile(certificateFile, 'the server certificate'),
    key: readTlsFile(keyFile, 'the server key'),
  };
  let clientCas = [authority.certificatePem];
  const context = () => ({ key, cert, ca: clientCas, minVersion: 'TLSv1.2' as const });
  return {
    https: { ...context(), requestCert: true, rejectUnauthorized: false },
    attach(server) {
      // A client certificate holds for its connection's life (auth.ts reads it once per connection).
      server.on('secureConnection', (socket) => socket.disableRenegotiation());
      return {
        certificateFile,
        caFile: join(pkiDir, CA_CERTIFICATE_FILE),
        auto: source.kind === 'auto',
        authority,
        material: () => ({ certificatePem: cert, privateKeyPem: key, caPems: clientCas }),
        setClientCas(pems) {
          clientCas = [authority.certificatePem, ...pems];
          server.setSecureContext(context());
        },
        async renewIfDue(at) {
          if (source.kind === 'auto') {
            if (await serverCertificateFits(authority, certificateFile, keyFile, names, at)) return false;
            await ensureServerCertificate(authority, pkiDir, names, at);
          }
          // The operator's files: whatever renewed them (certbot, say) is picked up here, once they make a pair.
          const newCert = readTlsFile(certificateFile, 'the server certificate');
          const newKey = readTlsFile(keyFile, 'the server key');
          if (newCert === cert && newKey === key) return false;
          if (source.kind === 'files') checkPair(newCert, newKey, source);
          cert = newCert;
          key = newKey;
          server.setSecureContext(context());
          return true;
        },
      };
    },
  };
}

/** The auto-made certificate in `<data>/pki/`, made again when its names, its CA or its remaining time no longer fit. */
async function ensureServerCertificate(
  authority: Authority,
  pkiDir: string,
  names: string[],
  now: Date,
): Promise<{ certificateFile: string; keyFile: string }> {
  const certificateFile = join(pkiDir, SERVER_CERTIFICATE_FILE);
  const keyFile = join(pkiDir, SERVER_KEY_FILE);
  if (!(await serverCertificateFits(authority, certificateFile, keyFile, names, now))) {
    const issued = await issueServerCertificate(authority, names, now);
    writeKeyFile(keyFile, issued.privateKeyPem);
    writePublicFile(certificateFile, issued.certificatePem);
  }
  return { certificateFile, keyFile };
}

async function serverCertificateFits(
  authority: Authority,
  certificateFile: string,
  keyFile: string,
  names: string[],
  now: Date,
): Promise<boolean> {
  if (!existsSync(certificateFile) || !existsSync(keyFile)) return false;
  const pem = readFileSync(certificateFile, 'utf8');
  try {
    const has = new Set(certificateNames(pem).map((n) => n.toLowerCase()));
    if (has.size !== names.length || names.some((n) => !has.has(n))) return false;
    const { notBefore, notAfter } = describeCertificate(pem);
    if (notBefore > now || notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) return false;
  } catch {
    return false; // unreadable: make a new one
  }
  return isIssuedBy(authority, pem);
}

function readPair(files: { certFile: string; keyFile: string }): { cert: string; key: string } {
  const cert = readTlsFile(files.certFile, '--tls-cert');
  const key = readTlsFile(files.keyFile, '--tls-key');
  checkPair(cert, key, files);
  return { cert, key };
}

/** The operator's files: a certificate, and the key that goes with it, or a one-line reason naming the file. */
function checkPair(cert: string, key: string, files: { certFile: string; keyFile: string }): void {
  try {
    describeCertificate(cert);
  } catch (error) {
    throw new FleetError(
      'VALIDATION',
      `--tls-cert ${files.certFile}: ${(error as Error).message}`,
      undefined,
      {
        cause: error,
      },
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new FleetError(
      'VALIDATION',
      `--tls-key ${files.keyFile} is not the key of --tls-cert ${files.certFile} (${(error as Error).message})`,
      undefined,
      { cause: error },
    );
  }
}

function readTlsFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new FleetError(
      'VALIDATION',
      `cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      undefined,
      { cause: error },
    );
  }
}

/** The start-up line that says how the listener is reached: TLS (and what to trust), loopback HTTP, or insecure. */
export function listenerBanner(host: string, tls: ListenerTls | undefined): string {
  if (tls)
    return tls.auto
      ? `TLS: certificate ${tls.certificateFile} issued by the FleetD CA ${tls.caFile} (clients trust it with --ca ${tls.caFile})`
      : `TLS: certificate ${tls.certificateFile}; device certificates are issued by the FleetD CA ${tls.caFile}`;
  if (isLoopback(host))
    return 'Plain HTTP on the loopback address: only this machine can connect (docs/tls.md)';
  return `INSECURE: plain HTTP on ${host} (--insecure-http): tokens and device credentials cross the network unencrypted`;
}
