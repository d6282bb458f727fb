import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { FsBlobStore } from './blob-store.js';

const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const MB = 1024 * 1024;

let dir: string;
let store: FsBlobStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fleetd-blobs-'));
  store = new FsBlobStore(dir);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const tempFiles = () => readdir(join(dir, 'blobs', 'tmp')).catch(() => []);

describe('FsBlobStore', () => {
  it('stores a blob under its hash and reads it back, whole or by range', async () => {
    const info = await store.put(Readable.from(['hello ', 'world']));
    expect(info).toEqual({ sha256: sha('hello world'), size: 11 });
    expect(store.path(info.sha256)).toBe(join(dir, 'blobs', 'sha256', info.sha256.slice(0, 2), info.sha256));
    expect(await readFile(store.path(info.sha256), 'utf8')).toBe('hello world');
    expect(await store.has(info.sha256.toUpperCase())).toBe(true);
    expect(await store.stat(info.sha256)).toEqual(info);
    expect(await text(await store.createReadStream(info.sha256, { start: 6, end: 10 }))).toBe('world');
    expect(await text(await store.createReadStream(info.sha256, { start: 6 }))).toBe('world');
    expect(await tempFiles()).toEqual([]);
  });

  it('streams 200 MB without holding it in memory', async () => {
    const chunk = 64 * 1024;
    const total = 200 * MB;
    // A few distinct, never-mutated chunks: the test's own allocations stay out of the measurement.
    const patterns = [1, 2, 3, 5, 8].map((n) => Buffer.alloc(chunk, n));
    const expected = createHash('sha256');
    const before = process.memoryUsage().rss;
    let peak = before;
    async function* generate() {
      for (let i = 0; i < total / chunk; i++) {
        const bytes = patterns[i % patterns.length]!;
        expected.update(bytes);
        if (i % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss);
        yield bytes;
      }
    }
    const info = await store.put(Readable.from(generate()), { expectedSize: total });
    expect(info).toEqual({ sha256: expected.digest('hex'), size: total });
    expect((await store.stat(info.sha256))?.size).toBe(total);
    expect(peak - before).toBeLessThan(64 * MB);
  });

  it('keeps one blob when the same bytes are put concurrently', async () => {
    const data = Buffer.alloc(3 * MB, 7);
    const results = await Promise.all(Array.from({ length: 5 }, () => store.put(Readable.from([data]))));
    expect(new Set(results.map((r) => r.sha256))).toEqual(new Set([sha(data)]));
    expect(await readdir(join(dir, 'blobs', 'sha256', sha(data).slice(0, 2)))).toEqual([sha(data)]);
    expect(await tempFiles()).toEqual([]);
    expect(await store.put(Readable.from([data]))).toEqual({ sha256: sha(data), size: data.length });
  });

  it('refuses an upload over the limit and leaves nothing behind', async () => {
    const data = Buffer.alloc(5000, 1);
    await expect(
      store.put(Readable.from([data.subarray(0, 2500), data.subarray(2500)]), { maxSize: 1000 }),
    ).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    await expect(store.put(Readable.from([data]), { maxSize: 10, expectedSize: 5000 })).rejects.toMatchObject(
      {
        code: 'PAYLOAD_TOO_LARGE',
      },
    );
    expect(await tempFiles()).toEqual([]);
    expect(await store.has(sha(data))).toBe(false);
  });

  it('refuses an upload of the wrong size or hash, or one that fails midway', async () => {
    await expect(store.put(Readable.from(['abc']), { expectedSize: 4 })).rejects.toThrow(
      /ended after 3 bytes/,
    );
    await expect(store.put(Readable.from(['abcde']), { expectedSize: 4 })).rejects.toThrow(/longer than/);
    await expect(store.put(Readable.from(['abc']), { expectedSha256: sha('abd') })).rejects.toThrow(
      /sha256 mismatch/,
    );
    async function* broken() {
      yield Buffer.from('partial');
      throw new Error('connection reset');
    }
    await expect(store.put(Readable.from(broken()))).rejects.toThrow('connection reset');
    expect(await tempFiles()).toEqual([]);
    for (const s of ['abc', 'abcd', 'abcde', 'partial']) expect(await store.has(sha(s))).toBe(false);
  });

  it('rejects anything but 64 hex characters before touching the filesystem', async () => {
    for (const bad of [
      '',
      '../../etc/passwd',
      'g'.repeat(64),
      'a'.repeat(63),
      `${'a'.repeat(64)}/`,
      `../${'a'.repeat(61)}`,
    ]) {
      expect(() => store.path(bad)).toThrow(/is not a sha256/);
      await expect(store.has(bad)).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(store.delete(bad)).rejects.toMatchObject({ code: 'VALIDATION' });
      await expect(store.createReadStream(bad)).rejects.toMatchObject({ code: 'VALIDATION' });
    }
  });

  it('deletes, and reports missing blobs', async () => {
    const { sha256 } = await store.put(Readable.from(['x']));
    expect(await store.delete(sha256)).toBe(true);
    expect(await store.delete(sha256)).toBe(false);
    expect(await store.stat(sha256)).toBeUndefined();
    await expect(store.createReadStream(sha256)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('checks a stored blob by re-hashing it, and a put of the same bytes replaces a damaged one', async () => {
    const data = Buffer.from('stored bytes '.repeat(1000));
    const { sha256 } = await store.put(Readable.from([data]));
    expect(await store.check(sha256)).toEqual({ state: 'intact', size: data.length });
    const damaged = Buffer.from(data);
    damaged[5] = 0;
    await writeFile(store.path(sha256), damaged);
    expect(await store.check(sha256)).toEqual({
      state: 'corrupt',
      size: data.length,
      foundSha256: sha(damaged),
    });
    const again = await store.put(Readable.from([data]));
    expect(again).toEqual({
      sha256,
      size: data.length,
      repaired: { state: 'corrupt', size: data.length, foundSha256: sha(damaged) },
    });
    expect(await readFile(store.path(sha256))).toEqual(data);
    expect(await store.put(Readable.from([data]))).toEqual({ sha256, size: data.length });
    await rm(store.path(sha256));
    expect(await store.check(sha256)).toEqual({ state: 'missing', size: 0 });
    expect(await store.put(Readable.from([data]))).toEqual({ sha256, size: data.length });
    expect(await store.check(sha256)).toEqual({ state: 'intact', size: data.length });
  });

  it('refuses an empty upload when asked to, keeping nothing', async () => {
    await expect(store.put(Readable.from([]), { refuseEmpty: true })).rejects.toThrow(
      /the artifact is empty/,
    );
    expect(await tempFiles()).toEqual([]);
    expect(await store.has(sha(''))).toBe(false);
  });

  it('sweeps only temp files older than the cut-off', async () => {
    const clock = new ManualClock(Date.parse('2030-01-01T00:00:00Z'));
    const swept = new FsBlobStore(dir, clock);
    await swept.put(Readable.from(['creates the temp folder']));
    const tmp = join(dir, 'blobs', 'tmp');
    await writeFile(join(tmp, 'old.part'), 'x');
    await writeFile(join(tmp, 'new.part'), 'x');
    await utimes(
      join(tmp, 'old.part'),
      new Date(clock.now() - 2 * 86_400_000),
      new Date(clock.now() - 2 * 86_400_000),
    );
    await utimes(join(tmp, 'new.part'), new Date(clock.now() - 60_000), new Date(clock.now() - 60_000));
    expect(await swept.sweepTemp()).toBe(1);
    expect(await tempFiles()).toEqual(['new.part']);
  });
});
