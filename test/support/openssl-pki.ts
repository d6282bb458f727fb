/**
 * Certificates for TLS tests made by the real `openssl` binary (EC P-256), so they do not depend on FleetD's
 * own CA code: a CA, a server certificate for 127.0.0.1 / localhost, client certificates with the device id as
 * common name, and the bad ones an attacker or a broken device would bring (expired, another CA, self-signed).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertificateFiles {
  cert: string;
  key: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER, lowercase hex, as openssl prints it (without the colons). */
  fingerprint: string;
  serial: string;
}

export interface OpensslCa {
  cert: string;
  certPem: string;
  /** A server certificate (serverAuth) for 127.0.0.1 and localhost. */
  server(name: string): CertificateFiles;
  /** A client certificate (clientAuth) with this common name; `days: -1` makes one already expired. */
  client(commonName: string, options?: { days?: number }): CertificateFiles;
}

function openssl(dir: string, args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function newKey(dir: string, file: string): void {
  openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

function describe(dir: string, cert: string, key: string): CertificateFiles {
  const fingerprint = openssl(dir, ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'])
    .trim()
    .replace(/^.*=/, '')
    .replace(/:/g, '')
    .toLowerCase();
  const serial = openssl(dir, ['x509', '-in', cert, '-noout', '-serial'])
    .trim()
    .replace(/^serial=/, '');
  return {
    cert: join(dir, cert),
    key: join(dir, key),
    certPem: readFileSync(join(dir, cert), 'utf8'),
    keyPem: readFileSync(join(dir, key), 'utf8'),
    fingerprint,
    serial,
  };
}

/** A self-signed certificate (no CA vouches for it) with this common name. */
export function selfSigned(dir: string, commonName: string): CertificateFiles {
  const base = `self-${commonName}`;
  newKey(dir, `${base}.key`);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${base}.key`,
    '-subj',
    `/CN=${commonName}`,
    '-days',
    '2',
    '-addext',
    'extendedKeyUsage=clientAuth',
    '-out',
    `${base}.crt`,
  ]);
  return describe(dir, `${base}.crt`, `${base}.key`);
}

export function opensslCa(dir: string, name: string): OpensslCa {
  const caKey = `${name}-ca.key`;
  const caCert = `${name}-ca.crt`;
  newKey(dir, caKey);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    `/CN=${name} test CA`,
    '-days',
    '2',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    caCert,
  ]);
  const sign = (base: string, subject: string, extensions: string, days: number) => {
    newKey(dir, `${base}.key`);
    openssl(dir, ['req', '-new', '-key', `${base}.key`, '-subj', subject, '-out', `${base}.csr`]);
    writeFileSync(join(dir, `${base}.ext`), extensions);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${base}.csr`,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      `${base}.ext`,
      '-out',
      `${base}.crt`,
    ]);
    return describe(dir, `${base}.crt`, `${base}.key`);
  };
  return {
    cert: join(dir, caCert),
    certPem: readFileSync(join(dir, caCert), 'utf8'),
    server: (server) =>
      sign(
        `${name}-${server}`,
        `/CN=${server}`,
        'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
        2,
      ),
    client: (commonName, options = {}) =>
      sign(
        `${name}-${commonName}${options.days === undefined ? '' : `-${options.days}d`}`,
        `/CN=${commonName}`,
        'extendedKeyUsage=clientAuth\n',
        options.days ?? 2,
      ),
  };
}
