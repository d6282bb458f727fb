/**
 * The agent's TUF check (src/agent/tuf-verifier.ts) against a running server: a release that is a signed
 * target passes; one the targets do not sign, one whose manifest differs from its target, a download that
 * differs, and metadata that has expired (a freeze) are refused; a server that cannot be reached is a retry.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TufUnavailable, TufVerifier } from '../src/agent/tuf-verifier.js';
import type { Manifest } from '../src/agent/verify.js';
import { tempDir } from './support/processes.js';
import { deviceWithRelease, type TufServer, tufServer } from './support/tuf.js';

const image = Buffer.from('agent firmware 2.0.0 '.repeat(3000));
const sha256 = createHash('sha256').update(image).digest('hex');
const manifest = (over: Partial<Manifest> = {}): Manifest => ({
  name: 'fw',
  version: '2.0.0',
  type: 'firmware',
  hardware: ['hw-a'],
  size: image.length,
  sha256,
  created: '2026-12-01T00:00:00.000Z',
  allow_downgrade: false,
  ...over,
});

let t: TufServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const verifier = (s: TufServer, server = s.server.url) =>
  new TufVerifier({
    rootJson: readFileSync(s.ceremony.rootFile, 'utf8'),
    metadataDir: join(tempDir('fleetd-agent-tuf-'), 'tuf'),
    server,
    fetch,
  });

describe("the agent's TUF check", () => {
  it('passes a signed target and refuses what the targets do not sign exactly', async () => {
    t = await tufServer({ start: Date.now() });
    await deviceWithRelease(t, 'dev-1', { name: 'fw', version: '2.0.0', bytes: image });
    const v = verifier(t);
    expect(await v.verify(manifest(), { size: image.length, sha256 })).toEqual({
      ok: true,
      value: undefined,
    });
    expect(await v.verify(manifest({ version: '2.0.1' }))).toEqual({
      ok: false,
      reason: 'TUF: fw@2.0.1 is not in the signed targets',
    });
    expect(await v.verify(manifest({ sha256: 'a'.repeat(64) }))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/differs from the release's manifest/),
    });
    expect(await v.verify(manifest(), { size: image.length, sha256: 'b'.repeat(64) })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/does not match its signed length and sha256/),
    });
  });

  it('refuses expired metadata (a frozen server) and retries an unreachable one', async () => {
    t = await tufServer({ start: Date.now() - 3 * 86_400_000 });
    await deviceWithRelease(t, 'dev-1', { name: 'fw', version: '2.0.0', bytes: image });
    expect(await verifier(t).verify(manifest())).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/TUF metadata refused: .*expired/i),
    });
    await expect(verifier(t, 'http://127.0.0.1:1').verify(manifest())).rejects.toBeInstanceOf(TufUnavailable);
  });
});
