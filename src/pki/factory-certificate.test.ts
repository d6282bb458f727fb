/** Reading factory CAs and device certificates made by the real openssl: the CA check, hardware type from OU or OID. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseHardwareFrom, readCaCertificate, readFactoryCertificate } from './factory-certificate.js';
import { x509 } from './x509.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetd-factory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The real openssl binary makes every certificate here, independently of the library that reads them. */
function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}
const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
function certificate(file: string, subject: string, extensions: string[]): string {
  openssl(
    'req',
    '-x509',
    '-new',
    ...P256,
    '-keyout',
    `${file}.key`,
    '-subj',
    subject,
    '-days',
    '2',
    ...extensions.flatMap((e) => ['-addext', e]),
    '-out',
    `${file}.crt`,
  );
  return readFileSync(join(dir, `${file}.crt`), 'utf8');
}
const der = (pem: string) => Buffer.from(new x509.X509Certificate(pem).rawData);

describe('hardware_from', () => {
  it('takes ou or oid: with a dotted OID, and refuses anything else', () => {
    expect(parseHardwareFrom('ou')).toEqual({ kind: 'ou' });
    expect(parseHardwareFrom('oid:1.3.6.1.4.1.55555.1')).toEqual({ kind: 'oid', oid: '1.3.6.1.4.1.55555.1' });
    for (const bad of ['OU', 'oid:', 'oid:1', 'oid:1.02', 'oid:3.1', 'cn', 'oid:1.2.x']) {
      expect(() => parseHardwareFrom(bad), bad).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    }
  });
});

describe('reading certificates', () => {
  const now = new Date();

  it('accepts a CA certificate and refuses one without CA:TRUE', () => {
    const ca = certificate('ca', '/CN=Acme CA', ['basicConstraints=critical,CA:TRUE']);
    expect(readCaCertificate(ca, now)).toMatchObject({ subject: 'CN=Acme CA' });
    const leaf = certificate('leaf', '/CN=leaf', ['basicConstraints=critical,CA:FALSE']);
    expect(() => readCaCertificate(leaf, now)).toThrow(/is not a CA certificate/);
    expect(() => readCaCertificate(ca, new Date(now.getTime() + 3 * 86_400_000))).toThrow(/has expired/);
  });

  it('reads the hardware type from the OU, an OID extension, or an OID in the subject', () => {
    const withExtension = certificate('dev1', '/OU=gw-ou/CN=dev-1', [
      '1.3.6.1.4.1.55555.1=ASN1:UTF8String:gw-ext',
    ]);
    expect(readFactoryCertificate(der(withExtension), { kind: 'ou' })).toMatchObject({
      deviceId: 'dev-1',
      hardwareType: 'gw-ou',
    });
    expect(
      readFactoryCertificate(der(withExtension), { kind: 'oid', oid: '1.3.6.1.4.1.55555.1' }),
    ).toMatchObject({ hardwareType: 'gw-ext' });
    expect(
      readFactoryCertificate(der(withExtension), { kind: 'oid', oid: '1.3.6.1.4.1.55555.9' }),
    ).toMatchObject({ hardwareType: null });
    const inSubject = certificate('dev2', '/2.5.4.12=gw-subject/CN=dev-2', []);
    expect(readFactoryCertificate(der(inSubject), { kind: 'oid', oid: '2.5.4.12' })).toMatchObject({
      deviceId: 'dev-2',
      hardwareType: 'gw-subject',
    });
  });
});
