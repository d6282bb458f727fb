/**
 * `fleetd server --device-cert-validity` and `fleetd devices revoke`, as an operator runs them: a real server
 * process, a device enrolling with a CSR made by `openssl req`, the revocation listed in the published CRL.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const DAY = 86_400_000;
let server: ServerProcess;
let data: string;
let dir: string;
const cli = (...args: string[]) => runCli(['--server', server.url, '--data', data, ...args]);

beforeAll(async () => {
  data = tempDir();
  dir = tempDir('fleetd-csr-');
  server = await spawnServer(data, ['--no-mqtt', '--device-cert-validity', '7d']);
});
afterAll(async () => {
  await server.kill();
});

it('issues certificates for the configured validity, revokes them and lists them in the CRL', async () => {
  const token = cli('enrollment', 'create').stdout.trim();
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      'dev.key',
      '-out',
      'dev.csr',
      '-subj',
      '/CN=dev-1',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const enrolled = await fetch(`${server.url}/api/device/v1/enroll`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      enrollment_token: token,
      device_id: 'dev-1',
      csr: readFileSync(join(dir, 'dev.csr'), 'utf8'),
    }),
  });
  expect(enrolled.status).toBe(201);
  const reply = (await enrolled.json()) as Record<string, string>;
  const { expires_at: expiresAt, ca_certificate: caPem } = reply;
  writeFileSync(join(dir, 'dev.crt'), reply.certificate!);
  const serial = execFileSync('openssl', ['x509', '-in', 'dev.crt', '-noout', '-serial'], {
    cwd: dir,
    encoding: 'utf8',
  })
    .trim()
    .replace(/^serial=/, '');
  const validity = Date.parse(expiresAt!) - Date.now();
  expect(validity).toBeGreaterThan(6 * DAY);
  expect(validity).toBeLessThan(8 * DAY);
  // The CA is the server's own, kept in its data folder.
  expect(readFileSync(join(data, 'pki', 'ca.crt'), 'utf8')).toBe(caPem);

  const revoked = cli('devices', 'revoke', 'dev-1');
  expect(revoked).toMatchObject({ code: 0, stdout: 'dev-1: 1 certificate revoked\n' });
  expect(JSON.parse(cli('devices', 'revoke', 'dev-1', '-o', 'json').stdout)).toEqual({
    device_id: 'dev-1',
    revoked: 0,
  });
  const listed = JSON.parse(cli('devices', 'certificates', 'dev-1', '-o', 'json').stdout);
  expect(listed.certificates).toEqual([
    expect.objectContaining({
      serial: serial.toLowerCase(),
      issuer: 'fleetd',
      revoked_at: expect.any(String),
    }),
  ]);
  expect(cli('devices', 'certificates', 'dev-1').stdout).toMatch(
    new RegExp(
      `^SERIAL\\s+ISSUER\\s+NOT AFTER\\s+REVOKED\\s+FINGERPRINT\\n${serial.toLowerCase()}\\s+fleetd\\s`,
    ),
  );
  const unknown = cli('devices', 'revoke', 'nobody');
  expect(unknown.code).not.toBe(0);
  expect(unknown.stderr.trim().split('\n')).toEqual([
    expect.stringContaining('device nobody is not registered'),
  ]);

  const crl = await fetch(`${server.url}/api/v1/pki/crl`);
  expect(crl.status).toBe(200);
  writeFileSync(join(dir, 'fleetd.crl'), await crl.text());
  writeFileSync(join(dir, 'ca.crt'), caPem!);
  const text = execFileSync('openssl', ['crl', '-in', 'fleetd.crl', '-CAfile', 'ca.crt', '-noout', '-text'], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  expect(text).toMatch(new RegExp(`Revoked Certificates:\\s+Serial Number: ${serial}\\s`));
});

it('refuses an unknown --device-auth mode in one line', () => {
  const r = runCli(['server', '--port', '0', '--no-mqtt', '--data', tempDir(), '--device-auth', 'sometimes']);
  expect(r.code).not.toBe(0);
  expect(r.stderr.trim()).toBe('fleetd: --device-auth: "sometimes" must be any or mtls');
});
