/**
 * Delta building against the real xdelta3, on every store backend: a rollout of a release to devices running an
 * older one builds, signs and records one delta per source version in use (once); the operator lists it; the
 * delta applied to the old image with the same tool gives the new image byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { signatureValid } from '../src/agent/verify.js';
import { parseDeltaManifest } from '../src/core/delta.js';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';
import { forEachBackend } from './support/stores.js';

const OLD = randomBytes(1024 * 1024);
const NEW = Buffer.from(OLD);
randomBytes(300).copy(NEW, 4096);
randomBytes(300).copy(NEW, 700_000);

forEachBackend((backend) => {
  describe('delta builds', () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await testApp(undefined, { store: await backend.open() });
      return () => t.close();
    });

    const upload = async (version: string, bytes: Buffer) => {
      const r = await t.app.inject({
        method: 'POST',
        url: `/api/v1/artifacts?name=app&version=${version}&hardware=box`,
        headers: { ...t.admin, 'content-type': 'application/octet-stream' },
        payload: bytes,
      });
      expect(r.statusCode).toBe(201);
      return r.json() as { id: string; sha256: string };
    };
    const roll = async (version: string) => {
      const r = await t.app.inject({
        method: 'POST',
        url: '/api/v1/rollouts',
        headers: t.admin,
        payload: {
          name: `to ${version}`,
          release: `app@${version}`,
          filter: 'hardware=box',
          strategy: 'immediate',
        },
      });
      expect(r.statusCode, r.body).toBe(201);
    };
    const list = async (ref: string) =>
      t.app.inject({ method: 'GET', url: `/api/v1/releases/${ref}/deltas`, headers: t.admin });

    it('builds one signed delta per version in use, once, that rebuilds the new image exactly', async () => {
      const old = await upload('1.0.0', OLD);
      const target = await upload('2.0.0', NEW);
      await t.store.importDevices(
        ['a', 'b', 'c'].map((id) => ({
          id,
          hardwareType: 'box',
          firmwareVersion: id === 'c' ? '0.1.0' : '1.0.0',
        })),
        { now: t.clock.now(), thresholds: { offlineAfterMs: 600_000, abandonedAfterMs: 30 * 86_400_000 } },
        'test',
      );
      await roll('2.0.0');
      await t.deltas!.idle();
      const listed = await list('app@2.0.0');
      expect(listed.statusCode).toBe(200);
      const deltas = listed.json().deltas as Array<Record<string, unknown>>;
      // 0.1.0 is no release: devices running it take the full image.
      expect(deltas).toMatchObject([
        { source_release_id: old.id, source_version: '1.0.0', target_release_id: target.id, tool: 'xdelta3' },
      ]);
      const size = deltas[0]!.size as number;
      expect(size).toBeLessThan(NEW.length / 20);
      expect(deltas[0]!.target_size).toBe(NEW.length);

      const [stored] = await t.store.deltas.toTarget(target.id);
      const manifest = parseDeltaManifest(stored!.manifest);
      expect(manifest).toMatchObject({ source_sha256: old.sha256, target_sha256: target.sha256, size });
      expect(signatureValid(stored!.manifest, stored!.signature, t.keyring.trusted[0]!.publicKey)).toBe(true);

      const dir = tempDir();
      const blob = join(t.dataDir, 'blobs', 'sha256', stored!.sha256.slice(0, 2), stored!.sha256);
      writeFileSync(join(dir, 'old'), OLD);
      execFileSync('xdelta3', ['-d', '-f', '-s', join(dir, 'old'), blob, join(dir, 'new')]);
      expect(readFileSync(join(dir, 'new')).equals(NEW)).toBe(true);

      await roll('2.0.0'); // a second rollout of the same release builds nothing new
      await t.deltas!.idle();
      expect((await list(target.id)).json().deltas).toHaveLength(1);
    });

    it('answers 404 with the error shape for a release that does not exist', async () => {
      const r = await list('nope@1.0.0');
      expect(r.statusCode).toBe(404);
      expect(r.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    });
  });
});
