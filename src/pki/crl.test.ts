import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateAuthority } from './authority.js';
import { createCrl } from './crl.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetd-crl-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function openssl(args: string[]) {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.error)
    throw new Error(`these tests need the openssl command line on PATH (${result.error.message})`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the revocation list', () => {
  it('is signed by the CA (openssl crl -verify) and lists every revoked serial', async () => {
    const now = new Date();
    const ca = await loadOrCreateAuthority(join(dir, 'pki'), now);
    const serials = ['7734bde05cd43e61346b283736780b57', '0100000000000000000000000000000a'];
    const pem = await createCrl(
      ca,
      serials.map((serial) => ({ serial, revokedAt: new Date(now.getTime() - 60_000) })),
      now,
      3_600_000,
    );
    const file = join(dir, 'fleetd.crl');
    await writeFile(file, pem);
    const read = openssl([
      'crl',
      '-in',
      file,
      '-verify',
      '-CAfile',
      join(dir, 'pki', 'ca.crt'),
      '-noout',
      '-text',
    ]);
    expect(read.output).toContain('verify OK');
    expect(read.status).toBe(0);
    for (const serial of serials) expect(read.output).toContain(`Serial Number: ${serial.toUpperCase()}`);
    expect(read.output).toContain('CRL Number');
  });

  it('of another CA does not verify', async () => {
    const ours = await loadOrCreateAuthority(join(dir, 'ours'), new Date());
    await loadOrCreateAuthority(join(dir, 'theirs'), new Date());
    const file = join(dir, 'fleetd.crl');
    await writeFile(file, await createCrl(ours, [], new Date(), 3_600_000));
    const read = openssl(['crl', '-in', file, '-verify', '-CAfile', join(dir, 'theirs', 'ca.crt'), '-noout']);
    expect(read.output).not.toContain('verify OK');
    expect(
      openssl(['crl', '-in', file, '-verify', '-CAfile', join(dir, 'ours', 'ca.crt'), '-noout']).output,
    ).toContain('verify OK');
  });
});
