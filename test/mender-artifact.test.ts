/**
 * The Mender Artifact check against artifacts written by Debian's real `mender-artifact`: the name, device types
 * and payload types are read, every checksum is checked, and a signature is verified with RSA and EC keys.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { MenderArtifactError, readMenderArtifact } from '../src/artifacts/mender-artifact.js';
import { wrapMenderArtifact } from '../src/artifacts/mender-writer.js';
import { buildMenderArtifact, hasMenderArtifact, menderKeyPair } from './support/mender-artifact.js';
import { tempDir } from './support/processes.js';

const run = hasMenderArtifact() ? describe : describe.skip;

run('Mender Artifact v3 check', () => {
  let dir: string;
  let plain: string;
  let rsa: { privateKey: string; publicKey: string };
  let ec: { privateKey: string; publicKey: string };
  const key = (file: string) => createPublicKey(readFileSync(file));
  const read = (file: string, keys = [] as ReturnType<typeof key>[], headerOnly = false) =>
    readMenderArtifact(createReadStream(file), { keys, headerOnly });

  beforeAll(() => {
    dir = tempDir('fleetd-mender-artifact-');
    rsa = menderKeyPair(join(dir, 'keys'), 'rsa');
    ec = menderKeyPair(join(dir, 'keys'), 'ec');
    plain = buildMenderArtifact(dir, {
      name: 'app-v1',
      deviceTypes: ['fleetd-dev', 'other-dev'],
      destDir: '/tmp/x',
      text: 'hello',
    });
  }, 30_000);

  it('reads the name, device types and payload types of an unsigned artifact, whole or header only', async () => {
    const expected = {
      name: 'app-v1',
      deviceTypes: ['fleetd-dev', 'other-dev'],
      payloadTypes: ['single-file'],
      signed: false,
    };
    expect(await read(plain)).toEqual(expected);
    expect(await read(plain, [], true)).toEqual(expected);
  });

  it('verifies RSA and EC signatures, and refuses a wrong key or no key', async () => {
    const signedRsa = buildMenderArtifact(dir, {
      name: 'app-rsa',
      deviceTypes: ['fleetd-dev'],
      destDir: '/tmp/x',
      text: 'rsa',
      signKey: rsa.privateKey,
    });
    const signedEc = buildMenderArtifact(dir, {
      name: 'app-ec',
      deviceTypes: ['fleetd-dev'],
      destDir: '/tmp/x',
      text: 'ec',
      signKey: ec.privateKey,
    });
    expect(await read(signedRsa, [key(ec.publicKey), key(rsa.publicKey)])).toMatchObject({
      name: 'app-rsa',
      signed: true,
    });
    expect(await read(signedEc, [key(ec.publicKey)])).toMatchObject({ name: 'app-ec', signed: true });
    await expect(read(signedEc, [key(rsa.publicKey)])).rejects.toThrow(/does not verify/);
    await expect(read(signedRsa)).rejects.toThrow(/no Mender artifact key/);
  }, 30_000);

  it('refuses a payload whose bytes do not match the manifest', async () => {
    // The payload's tar is gzip'ed: change one byte of the uncompressed file by rebuilding with a patched manifest.
    const bytes = readFileSync(plain);
    const text = bytes.toString('latin1');
    const at = text.indexOf('  data/0000/hello.txt');
    expect(at).toBeGreaterThan(64);
    const corrupted = Buffer.from(bytes);
    corrupted[at - 1] = corrupted[at - 1] === 0x30 ? 0x31 : 0x30;
    const file = join(dir, 'corrupted.mender');
    writeFileSync(file, corrupted);
    await expect(read(file)).rejects.toThrow(/checksum of "data\/0000\/hello.txt" does not match/);
  });

  it('refuses what is not a Mender artifact', async () => {
    const error = await readMenderArtifact(Readable.from([Buffer.alloc(2048, 7)]), { keys: [] }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MenderArtifactError);
  });

  it('wraps a plain file into an artifact that mender-artifact validates, unsigned and signed (RSA, EC)', async () => {
    const file = join(dir, 'app.bin');
    writeFileSync(file, 'a plain file\n');
    const validate = (artifact: string, key?: string) =>
      spawnSync('mender-artifact', ['validate', ...(key ? ['-k', key] : []), artifact], { encoding: 'utf8' });
    const unsigned = join(dir, 'wrapped.mender');
    await wrapMenderArtifact(
      { file, name: 'wrapped-v1', deviceTypes: ['fleetd-dev'], destDir: '/opt/app' },
      unsigned,
    );
    expect(validate(unsigned).status, validate(unsigned).stderr).toBe(0);
    expect(await read(unsigned)).toEqual({
      name: 'wrapped-v1',
      deviceTypes: ['fleetd-dev'],
      payloadTypes: ['single-file'],
      signed: false,
    });
    for (const pair of [rsa, ec]) {
      const signed = join(dir, `wrapped-${pair === rsa ? 'rsa' : 'ec'}.mender`);
      const signKey = createPrivateKey(readFileSync(pair.privateKey));
      await wrapMenderArtifact(
        { file, name: 'wrapped-v1', deviceTypes: ['fleetd-dev'], destDir: '/opt/app', signKey },
        signed,
      );
      const checked = validate(signed, pair.publicKey);
      expect(checked.status, checked.stderr).toBe(0);
      expect(validate(signed, (pair === rsa ? ec : rsa).publicKey).status).not.toBe(0);
      expect(await read(signed, [key(pair.publicKey)])).toMatchObject({ signed: true });
    }
  }, 30_000);
});
