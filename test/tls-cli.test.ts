/**
 * The HTTP listener over TLS as a person runs it: `fleetd server --tls auto` checked with openssl s_client and
 * curl, the CLI trusting the FleetD CA, an operator's own certificate files, and the refusal of plain HTTP off
 * loopback. Real processes throughout (the built binary).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type ServerProcess, spawnServer, tempDir } from './support/processes.js';

function run(command: string, args: string[], input = '') {
  const result = spawnSync(command, args, { encoding: 'utf8', input, timeout: 20_000 });
  if (result.error) throw new Error(`these tests need ${command} on PATH (${result.error.message})`);
  return { code: result.status, output: `${result.stdout}${result.stderr}`, stdout: result.stdout };
}

let data: string;
let server: ServerProcess;
let caFile: string;
let address: string;

beforeAll(async () => {
  data = tempDir();
  server = await spawnServer(data, ['--no-mqtt', '--tls', 'auto', '--tls-name', 'fleet.example.test']);
  caFile = join(data, 'pki', 'ca.crt');
  address = server.url.replace('https://', '');
});
afterAll(async () => {
  await server.kill();
});

describe('fleetd server --tls auto', () => {
  it('says it serves TLS and which CA file clients trust; the keys are 0600', () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(server.output()).toContain(
      `TLS: certificate ${join(data, 'pki', 'server.crt')} issued by the FleetD CA ${caFile}`,
    );
    expect(statSync(join(data, 'pki', 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(data, 'pki', 'server.key')).mode & 0o777).toBe(0o600);
    const names = run('openssl', [
      'x509',
      '-in',
      join(data, 'pki', 'server.crt'),
      '-noout',
      '-ext',
      'subjectAltName',
    ]);
    for (const name of [
      'DNS:fleet.example.test',
      'DNS:localhost',
      `DNS:${hostname().toLowerCase()}`,
      'IP Address:127.0.0.1',
    ])
      expect(names.output).toContain(name);
  });

  it('openssl s_client verifies its certificate with the FleetD CA, over TLS 1.2 or later', () => {
    const connected = run('openssl', [
      's_client',
      '-connect',
      address,
      '-servername',
      'localhost',
      '-CAfile',
      caFile,
      '-verify_return_error',
      '-verify_hostname',
      'localhost',
    ]);
    expect(connected.output).toContain('Verify return code: 0 (ok)');
    expect(connected.output).toMatch(/Protocol\s*:\s*TLSv1\.[23]|New, TLSv1\.3/);
    expect(connected.code).toBe(0);
    // Without the CA the chain is not trusted.
    const untrusted = run('openssl', ['s_client', '-connect', address, '-verify_return_error']);
    expect(untrusted.output).not.toContain('Verify return code: 0 (ok)');
    expect(untrusted.code).not.toBe(0);
  });

  it('refuses TLS 1.1 and 1.0 (the client offering them at the lowest security level, so the refusal is the server’s)', () => {
    for (const version of ['-tls1_1', '-tls1']) {
      const old = run('openssl', [
        's_client',
        '-connect',
        address,
        version,
        '-cipher',
        'DEFAULT:@SECLEVEL=0',
      ]);
      expect(old.output).toMatch(/alert protocol version|no protocols available|unsupported protocol/);
      expect(old.output).not.toContain('BEGIN CERTIFICATE');
      expect(old.code).not.toBe(0);
    }
  });

  it('curl with --cacert gets /healthz; curl without it fails', () => {
    const ok = run('curl', ['-sS', '--cacert', caFile, `${server.url}/healthz`]);
    expect(ok.stdout).toBe('{"ok":true}');
    const refused = run('curl', ['-sS', `${server.url}/healthz`]);
    expect(refused.code).toBe(60); // curl: peer certificate cannot be authenticated with known CA certificates
  });

  it('hands out its CA at /api/v1/pki/ca without a token', () => {
    const pem = run('curl', ['-sS', '--fail', '--cacert', caFile, `${server.url}/api/v1/pki/ca`]);
    expect(pem.stdout).toBe(readFileSync(caFile, 'utf8'));
  });

  it('the CLI trusts the CA given with --ca, FLEETD_CA or found in the data folder, and no other', () => {
    const token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    const elsewhere = tempDir(); // a data folder without the CA, so only --ca or FLEETD_CA can trust it
    const stats = (args: string[], env: Record<string, string> = {}) =>
      runCli(['--server', server.url, '--token', token, ...args, 'fleet', 'stats', '-o', 'json'], env);

    const withFlag = stats(['--data', elsewhere, '--ca', caFile]);
    expect(withFlag.stderr).toBe('');
    expect(JSON.parse(withFlag.stdout)).toHaveProperty('total');
    expect(stats(['--data', elsewhere], { FLEETD_CA: caFile }).code).toBe(0);
    expect(stats(['--data', data]).code).toBe(0);

    const untrusted = stats(['--data', elsewhere]);
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr.trim().split('\n')).toHaveLength(1);
    expect(untrusted.stderr).toMatch(/certificate is not trusted .*--ca FILE/);

    const otherCa = join(tempDir(), 'other-ca.crt');
    const made = run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(tempDir(), 'k.pem'),
      '-subj',
      '/CN=Someone Else CA',
      '-days',
      '1',
      '-out',
      otherCa,
    ]);
    expect(made.code).toBe(0);
    const wrongCa = stats(['--data', elsewhere, '--ca', otherCa]);
    expect(wrongCa.code).not.toBe(0);
    expect(wrongCa.stderr).toMatch(/not trusted/);
    const missing = stats(['--data', elsewhere, '--ca', join(elsewhere, 'nope.crt')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--ca: cannot read .*nope\.crt/);
  });
});

describe('listening off loopback', () => {
  it('without TLS is refused with one line and a non-zero exit; --insecure-http starts and says so', async () => {
    const refused = runCli(['server', '--port', '0', '--no-mqtt', '--host', '0.0.0.0', '--data', tempDir()]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(
      /refusing to serve plain HTTP on 0\.0\.0\.0: give --tls auto .*--insecure-http/,
    );

    const insecure = await spawnServer(tempDir(), ['--no-mqtt', '--host', '0.0.0.0', '--insecure-http']);
    try {
      expect(insecure.output()).toMatch(/INSECURE: plain HTTP on 0\.0\.0\.0 \(--insecure-http\)/);
      const port = new URL(insecure.url).port;
      expect(run('curl', ['-sS', `http://127.0.0.1:${port}/healthz`]).stdout).toBe('{"ok":true}');
    } finally {
      await insecure.kill();
    }
  });

  it('with the operator’s own --tls-cert and --tls-key (made by openssl) serves that certificate', async () => {
    const dir = tempDir();
    const made = run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'server.key'),
      '-subj',
      '/CN=fleet.example.test',
      '-addext',
      'subjectAltName=DNS:fleet.example.test,IP:127.0.0.1',
      '-days',
      '2',
      '-out',
      join(dir, 'server.crt'),
    ]);
    expect(made.code).toBe(0);
    const own = await spawnServer(tempDir(), [
      '--no-mqtt',
      '--host',
      '0.0.0.0',
      '--tls-cert',
      join(dir, 'server.crt'),
      '--tls-key',
      join(dir, 'server.key'),
    ]);
    try {
      expect(own.output()).toContain(`TLS: certificate ${join(dir, 'server.crt')}`);
      const port = new URL(own.url).port;
      const ok = run('curl', [
        '-sS',
        '--cacert',
        join(dir, 'server.crt'),
        `https://127.0.0.1:${port}/healthz`,
      ]);
      expect(ok.stdout).toBe('{"ok":true}');
    } finally {
      await own.kill();
    }
  });

  it('refuses --tls-cert without --tls-key, and an unknown --tls mode', () => {
    const half = runCli(['server', '--port', '0', '--no-mqtt', '--data', tempDir(), '--tls-cert', 'x.crt']);
    expect(half.code).not.toBe(0);
    expect(half.stderr).toContain('--tls-cert and --tls-key go together');
    const mode = runCli(['server', '--port', '0', '--no-mqtt', '--data', tempDir(), '--tls', 'on']);
    expect(mode.stderr).toContain('--tls: "on" must be auto');
  });
});
