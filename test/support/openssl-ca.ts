/**
 * A certificate authority made and run by the real `openssl` command, for tests of the device side of TLS:
 * it signs the agent's CSRs and a server certificate for 127.0.0.1, independently of FleetD's own CA code.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './processes.js';

export interface OpensslCa {
  dir: string;
  certificatePem: string;
  /** Signs a PKCS#10 request as it stands (its subject kept); `seconds` overrides the validity in days. */
  issue(csrPem: string, validity?: { days?: number; seconds?: number }): string;
  /** A server certificate and key for 127.0.0.1 and localhost. */
  serverPair(): { certificatePem: string; keyPem: string };
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function opensslCa(name = 'Test CA'): OpensslCa {
  const dir = tempDir('fleetd-ca-');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(
    ['req', '-x509', '-new', '-key', 'ca.key', '-subj', `/CN=${name}`, '-days', '30', '-out', 'ca.pem'],
    dir,
  );
  let serial = 1;
  const sign = (csrFile: string, extra: string[]): string => {
    serial += 1;
    const out = `cert-${serial}.pem`;
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csrFile,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        String(serial),
      ].concat(extra, ['-out', out]),
      dir,
    );
    return readFileSync(join(dir, out), 'utf8');
  };
  return {
    dir,
    certificatePem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    issue(csrPem, validity = {}) {
      const file = `req-${serial + 1}.pem`;
      writeFileSync(join(dir, file), csrPem);
      if (validity.seconds !== undefined) {
        // `openssl x509 -req` takes days only; `-preserve_dates` is for re-signing. Go through `openssl ca`
        // style dates with a throwaway config instead.
        return signWithDates(dir, file, validity.seconds, () => (serial += 1));
      }
      return sign(file, ['-days', String(validity.days ?? 90)]);
    },
    serverPair() {
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key'], dir);
      openssl(['req', '-new', '-key', 'server.key', '-subj', '/CN=127.0.0.1', '-out', 'server.csr'], dir);
      writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
      const certificatePem = sign('server.csr', ['-days', '2', '-extfile', 'server.ext']);
      return { certificatePem, keyPem: readFileSync(join(dir, 'server.key'), 'utf8') };
    },
  };
}

/** A certificate valid from now for `seconds`, through `openssl ca` (which takes exact start and end dates). */
function signWithDates(dir: string, csrFile: string, seconds: number, nextSerial: () => number): string {
  const serial = nextSerial();
  const stamp = (ms: number) => `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`; // YYMMDDHHMMSSZ
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), `${serial.toString(16).padStart(2, '0')}\n`);
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      'database = index.txt',
      'serial = serial',
      'new_certs_dir = .',
      'certificate = ca.pem',
      'private_key = ca.key',
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const now = Date.now();
  const out = `dated-${serial}.pem`;
  openssl(
    ['ca', '-batch', '-config', 'ca.cnf', '-in', csrFile, '-out', out, '-notext'].concat([
      '-startdate',
      stamp(now - 1000),
      '-enddate',
      stamp(now + seconds * 1000),
    ]),
    dir,
  );
  return readFileSync(join(dir, out), 'utf8');
}
