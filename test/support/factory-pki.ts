/**
 * A manufacturer's PKI made by the real `openssl` command, independent of FleetD's own CA code: a factory CA and
 * device certificates it issues, with the hardware type in the subject's OU and in a custom OID extension.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The private enterprise OID the test devices carry their model in. */
export const MODEL_OID = '1.3.6.1.4.1.55555.1';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface FactoryCa {
  /** `<name>.crt` in the folder: the CA certificate. */
  certificateFile: string;
  certificatePem: string;
  /**
   * A device certificate and key, `<file>.crt` and `<file>.key` in the folder: CN = the device id, OU = `ou`,
   * and the model in the MODEL_OID extension.
   */
  issue(file: string, cn: string, hardware: { ou: string; model: string }): void;
}

let serial = 100;

export function factoryCa(dir: string, name: string): FactoryCa {
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    ...P256,
    '-keyout',
    `${name}.key`,
    '-subj',
    `/O=${name} Manufacturing/CN=${name} Factory CA`,
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    `${name}.crt`,
  ]);
  return {
    certificateFile: join(dir, `${name}.crt`),
    certificatePem: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    issue(file, cn, hardware) {
      openssl(
        dir,
        ['req', '-new', ...P256, '-keyout', `${file}.key`, '-subj', `/OU=${hardware.ou}/CN=${cn}`].concat([
          '-out',
          `${file}.csr`,
        ]),
      );
      writeFileSync(
        join(dir, `${file}.ext`),
        `basicConstraints=CA:FALSE\n${MODEL_OID}=ASN1:UTF8String:${hardware.model}\n`,
      );
      serial += 1;
      openssl(dir, [
        'x509',
        '-req',
        '-in',
        `${file}.csr`,
        '-CA',
        `${name}.crt`,
        '-CAkey',
        `${name}.key`,
        '-set_serial',
        String(serial),
        '-days',
        '30',
        '-extfile',
        `${file}.ext`,
        '-out',
        `${file}.crt`,
      ]);
    },
  };
}

/** A self-signed certificate that is not a CA (basicConstraints CA:FALSE): what `ca trust` must refuse. */
export function leafCertificate(dir: string, file: string): string {
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    ...P256,
    '-keyout',
    `${file}.key`,
    '-subj',
    '/CN=not-a-ca',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-out',
    `${file}.crt`,
  ]);
  return join(dir, `${file}.crt`);
}
