/**
 * Damaged stored artifacts are noticed and repaired, on real files: one byte of a stored blob is flipped (or
 * the file removed), then an upload of the same bytes, `POST /artifacts/verify` and the background scrub
 * each find it. Orphaned upload temp files are swept periodically, never an upload in progress.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobScrubber } from '../src/artifacts/blob-scrubber.js';
import { FsBlobStore } from '../src/artifacts/blob-store.js';
import { ManualClock } from '../src/core/clock.js';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';
import { forEachBackend, testRelease } from './support/stores.js';

let t: TestApp;
let blobs: FsBlobStore;
beforeEach(async () => {
  t = await testApp();
  blobs = new FsBlobStore(t.dataDir, t.clock);
});
afterEach(async () => {
  await t.close();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function upload(version: string, body: Buffer) {
  const r = await t.app.inject({
    method: 'POST',
    url: `/api/v1/artifacts?name=fw&version=${version}&hardware=hw`,
    headers: { ...t.admin, 'content-type': 'application/octet-stream' },
    payload: body,
  });
  expect(r.statusCode, r.body).toBe(201);
  return r.json() as { sha256: string };
}

/** Flips one byte of the stored blob, as a failing disk would. */
async function flipByte(sha256: string, at = 1000): Promise<void> {
  const path = blobs.path(sha256);
  const bytes = await readFile(path);
  bytes[at] = bytes[at]! ^ 0xff;
  await writeFile(path, bytes);
}

const artifactEvents = () => t.store.listEvents({ typePrefix: 'artifact.', limit: 100 });

describe('a damaged stored blob', () => {
  it('is replaced by an upload of the same bytes, which no longer counts as "already stored"', async () => {
    const bytes = randomBytes(50_000);
    const { sha256 } = await upload('1.0.0', bytes);
    await flipByte(sha256);
    await upload('1.1.0', bytes);
    expect((await readFile(blobs.path(sha256))).equals(bytes)).toBe(true);
    const download = await t.app.inject({
      method: 'GET',
      url: '/api/v1/artifacts/fw@1.0.0/download',
      headers: t.admin,
    });
    expect(sha(download.rawPayload)).toBe(sha256);
    const events = await artifactEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'artifact.repaired',
      actor: 'api:admin',
      data: { sha256, releases: ['fw@1.0.0'], problem: 'altered', found_size: 50_000 },
    });
    expect(events[0]!.data.found_sha256).not.toBe(sha256);

    // Intact, it is left alone: no event.
    await upload('1.2.0', bytes);
    expect(await artifactEvents()).toHaveLength(1);
  });

  it('is reported by POST /artifacts/verify, with the releases using it, and recorded as an event', async () => {
    const [a, b, c] = [randomBytes(30_000), randomBytes(20_000), randomBytes(10_000)];
    const ra = await upload('1.0.0', a);
    await upload('1.0.1', a);
    const rb = await upload('2.0.0', b);
    const rc = await upload('3.0.0', c);
    const verify = (query = '') =>
      t.app.inject({ method: 'POST', url: `/api/v1/artifacts/verify${query}`, headers: t.admin });

    const clean = await verify();
    expect(clean.statusCode, clean.body).toBe(200);
    expect(clean.json()).toEqual({ checked: 3, bytes: 60_000, damaged: [] });

    await flipByte(ra.sha256, 29_999);
    await rm(blobs.path(rc.sha256));
    const found = (await verify()).json();
    expect(found.checked).toBe(3);
    expect(found.damaged).toHaveLength(2);
    expect(found.damaged).toContainEqual({
      sha256: ra.sha256,
      size: 30_000,
      releases: ['fw@1.0.1', 'fw@1.0.0'],
      problem: 'altered',
      found_size: 30_000,
      found_sha256: expect.not.stringMatching(ra.sha256),
    });
    expect(found.damaged).toContainEqual({
      sha256: rc.sha256,
      size: 10_000,
      releases: ['fw@3.0.0'],
      problem: 'missing',
      found_size: 0,
    });
    const events = await artifactEvents();
    expect(events.map((e) => [e.type, e.data.sha256]).sort()).toEqual(
      [
        ['artifact.corrupted', ra.sha256],
        ['artifact.corrupted', rc.sha256],
      ].sort(),
    );
    expect(events.every((e) => e.reason?.includes('fw@'))).toBe(true);

    expect((await verify('?release=fw@2.0.0')).json()).toEqual({ checked: 1, bytes: 20_000, damaged: [] });
    expect((await verify(`?release=${encodeURIComponent('fw@1.0.1')}`)).json().damaged).toHaveLength(1);
    expect(rb.sha256).toBe(sha(b));
    expect((await verify('?release=fw@9.9.9')).statusCode).toBe(404);
  });

  it('is found by the background scrub, at its bounded rate, with one event however often it is seen', async () => {
    const scrubber = new BlobScrubber(t.store, blobs, t.clock, t.app.log, { bytesPerSec: 100_000 });
    const sent = [randomBytes(100_000), randomBytes(100_000), randomBytes(100_000)];
    const shas: string[] = [];
    for (const [i, bytes] of sent.entries()) shas.push((await upload(`1.0.${i}`, bytes)).sha256);
    const damaged = shas[1]!;
    await flipByte(damaged);

    expect((await scrubber.tick()).checked).toBe(0); // no time has passed: no credit to read with
    const seen: string[] = [];
    for (let second = 0; second < 6; second++) {
      t.clock.advance(1_000);
      const pass = await scrubber.tick();
      // 100,000 bytes a second: one blob of 100,000 bytes per second, never more.
      expect(pass.checked).toBe(1);
      seen.push(...pass.damaged.map((d) => d.sha256));
    }
    expect(seen).toEqual([damaged, damaged]); // two passes over the three blobs
    const events = await artifactEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'artifact.corrupted',
      actor: 'scrub',
      data: { sha256: damaged, problem: 'altered', releases: ['fw@1.0.1'] },
    });

    // An hour's pause does not become an hour's worth of reads at once: at most a minute's (6,000,000 bytes).
    t.clock.advance(3_600_000);
    let read = 0;
    let ticks = 0;
    for (let pass = await scrubber.tick(); pass.checked > 0 && ticks < 200; pass = await scrubber.tick()) {
      read += pass.bytes;
      ticks++;
    }
    expect(ticks).toBeLessThan(200);
    expect(read).toBeGreaterThanOrEqual(6_000_000);
    expect(read).toBeLessThanOrEqual(6_100_000);
    expect(await artifactEvents()).toHaveLength(1);
  });

  it("checks a release's variant files too, and reports a damaged one by client", async () => {
    const { id } = (await upload('1.0.0', randomBytes(20_000))) as { id: string; sha256: string };
    const menderBytes = randomBytes(15_000);
    const stored = await blobs.put(Readable.from([menderBytes]));
    await t.store.variants.add(
      { releaseId: id, client: 'mender', size: stored.size, sha256: stored.sha256, createdAt: t.clock.now() },
      'test',
    );
    const verify = (query = '') =>
      t.app.inject({ method: 'POST', url: `/api/v1/artifacts/verify${query}`, headers: t.admin });
    expect((await verify()).json()).toEqual({ checked: 2, bytes: 35_000, damaged: [] });

    await flipByte(stored.sha256);
    const expected = {
      sha256: stored.sha256,
      size: 15_000,
      releases: [],
      variants: [{ release: 'fw@1.0.0', client: 'mender' }],
      problem: 'altered',
      found_size: 15_000,
      found_sha256: expect.not.stringMatching(stored.sha256),
    };
    expect((await verify('?release=fw@1.0.0')).json()).toMatchObject({ checked: 2, damaged: [expected] });
    const [event] = await artifactEvents();
    expect(event).toMatchObject({ type: 'artifact.corrupted', data: { sha256: stored.sha256 } });
    expect(event!.reason).toContain('the mender variant of fw@1.0.0');

    // The background scrub reads variant files as well.
    const scrubber = new BlobScrubber(t.store, blobs, t.clock, t.app.log, { bytesPerSec: 1_000_000 });
    await scrubber.tick(); // the first tick only starts the rate's clock
    t.clock.advance(1_000);
    const pass = await scrubber.tick();
    expect(pass.checked).toBe(2);
    expect(pass.damaged.map((d) => d.variants)).toEqual([[{ release: 'fw@1.0.0', client: 'mender' }]]);
  });
});

describe('POST /artifacts/:ref/repair', () => {
  it("replaces a missing or altered blob with the release's very bytes, and refuses other bytes", async () => {
    const bytes = randomBytes(40_000);
    const { sha256 } = await upload('1.0.0', bytes);
    const repair = (body: Buffer, headers: Record<string, string> = {}) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/artifacts/fw@1.0.0/repair',
        headers: { ...t.admin, ...headers },
        payload: body,
      });

    expect((await repair(bytes)).json()).toEqual({ sha256, found: 'intact' });
    expect(await artifactEvents()).toEqual([]);

    await rm(blobs.path(sha256));
    const wrong = await repair(randomBytes(40_000));
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.message).toMatch(/sha256 mismatch/);
    expect(await blobs.has(sha256)).toBe(false);
    const missing = await repair(bytes, { 'content-type': 'text/plain' });
    expect(missing.json()).toEqual({ sha256, found: 'missing' });
    expect((await readFile(blobs.path(sha256))).equals(bytes)).toBe(true);

    await flipByte(sha256);
    expect((await repair(bytes)).json()).toEqual({ sha256, found: 'altered' });
    expect((await readFile(blobs.path(sha256))).equals(bytes)).toBe(true);
    const events = await artifactEvents();
    expect(events.map((e) => [e.type, e.data.problem])).toEqual([
      ['artifact.repaired', 'missing'],
      ['artifact.repaired', 'altered'],
    ]);
    expect(
      (await t.app.inject({ method: 'POST', url: '/api/v1/artifacts/verify', headers: t.admin })).json(),
    ).toMatchObject({ damaged: [] });
  });
});

describe('orphaned upload temp files', () => {
  it('are swept periodically once old, never an upload in progress however long it has been silent', async () => {
    const scrubber = new BlobScrubber(t.store, blobs, t.clock, t.app.log, { bytesPerSec: 0 });
    const tmp = join(t.dataDir, 'blobs', 'tmp');
    const inFlight = new PassThrough();
    const putting = blobs.put(inFlight);
    inFlight.write(randomBytes(1000));
    let names: string[] = [];
    while (names.length === 0) names = await readdir(tmp).catch(() => []);
    const uploading = names[0]!;

    const aged = new Date(t.clock.now() - 2 * 3_600_000);
    await writeFile(join(tmp, 'crashed.part'), 'left by a crash');
    await writeFile(join(tmp, 'recent.part'), 'another process, still writing');
    const recent = new Date(t.clock.now() - 10 * 60_000);
    await utimes(join(tmp, 'crashed.part'), aged, aged);
    await utimes(join(tmp, 'recent.part'), recent, recent);
    await utimes(join(tmp, uploading), aged, aged);

    const pass = await scrubber.tick();
    expect(pass.sweptTemp).toBe(1);
    expect((await readdir(tmp)).sort()).toEqual(['recent.part', uploading].sort());

    inFlight.end(randomBytes(1000));
    expect((await putting).size).toBe(2000);
    t.clock.advance(2 * 3_600_000);
    expect((await scrubber.tick()).sweptTemp).toBe(1);
    expect(await readdir(tmp)).toEqual([]);
  });
});

forEachBackend((backend) => {
  it('the scrub reads releases from the store and records artifact.corrupted in it', async () => {
    const store = await backend.open();
    const clock = new ManualClock(Date.parse('2026-11-22T12:00:00Z'));
    const dir = tempDir('fleetd-scrub-');
    const stored = new FsBlobStore(dir, clock);
    const bytes = randomBytes(10_000);
    const { sha256, size } = await stored.put(Readable.from([bytes]));
    for (const [id, version] of [
      ['rel_a', '1.0.0'],
      ['rel_b', '1.1.0'],
    ] as const) {
      await store.releases.create({ ...testRelease(id, version, clock.now()), sha256, size }, 'test');
    }
    const scrubber = new BlobScrubber(store, stored, clock, t.app.log, { bytesPerSec: 1_000_000 });
    await scrubber.tick();
    const path = stored.path(sha256);
    const damaged = await readFile(path);
    damaged[0] = damaged[0]! ^ 1;
    await writeFile(path, damaged);
    clock.advance(1_000);
    expect((await scrubber.tick()).damaged).toHaveLength(1);
    const events = await store.listEvents({ typePrefix: 'artifact.', limit: 10 });
    expect(events).toMatchObject([
      { type: 'artifact.corrupted', actor: 'scrub', data: { sha256, releases: ['fw@1.1.0', 'fw@1.0.0'] } },
    ]);
    await rm(dir, { recursive: true, force: true });
  });
});
