import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DownloadError, download, parseContentRange } from './downloader.js';

const SIZE = 1024 * 1024 + 123;
const CHUNK = 16 * 1024;

/** An artifact server speaking Range / If-Range / ETag, counting the body bytes it actually sends. */
async function artifactServer(body: Buffer) {
  const state = {
    etag: '"v1"',
    bytesSent: 0,
    requests: [] as { range: string | undefined; ifRange: string | undefined; status: number }[],
    /** Cut the connection after this many body bytes of the next response. */
    cutAfter: undefined as number | undefined,
    ignoreRange: false,
  };
  const server: Server = createServer((req, res) => {
    if (req.url !== '/artifact') {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'] as string | undefined;
    let start = 0;
    let status = 200;
    if (range && !state.ignoreRange && (ifRange === undefined || ifRange === state.etag)) {
      start = Number(range[1]);
      if (start >= body.length) {
        state.requests.push({ range: req.headers.range, ifRange, status: 416 });
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      status = 206;
    }
    state.requests.push({ range: req.headers.range, ifRange, status });
    res.writeHead(status, {
      etag: state.etag,
      'accept-ranges': 'bytes',
      'content-length': body.length - start,
      ...(status === 206 ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    const cut = state.cutAfter;
    state.cutAfter = undefined;
    let at = start;
    const pump = () => {
      while (at < body.length) {
        const end = Math.min(body.length, at + CHUNK);
        if (cut !== undefined && at - start + (end - at) > cut) {
          const last = body.subarray(at, start + cut);
          state.bytesSent += last.length;
          res.write(last, () => res.socket?.destroy());
          return;
        }
        const chunk = body.subarray(at, end);
        state.bytesSent += chunk.length;
        at = end;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { state, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/artifact` };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dest = async () => join(await mkdtemp(join(tmpdir(), 'fleetd-dl-')), 'artifact');

describe('downloader', () => {
  it('streams the whole artifact, hashing it and reporting progress', async () => {
    const body = randomBytes(SIZE);
    const { state, url } = await artifactServer(body);
    const path = await dest();
    const progress: number[] = [];
    const result = await download({ url, dest: path, onProgress: (done) => void progress.push(done) });
    expect(result).toEqual({ size: SIZE, sha256: sha(body), resumedFrom: 0 });
    expect((await readFile(path)).equals(body)).toBe(true);
    expect(progress.at(-1)).toBe(SIZE);
    expect(state.bytesSent).toBe(SIZE);
    await expect(stat(`${path}.part`)).rejects.toThrow();
  });

  it('resumes an interrupted transfer without fetching finished bytes again', async () => {
    const body = randomBytes(SIZE);
    const { state, url } = await artifactServer(body);
    const path = await dest();
    state.cutAfter = 400_000;
    await expect(download({ url, dest: path })).rejects.toBeInstanceOf(DownloadError);
    const kept = (await stat(`${path}.part`)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(400_000);
    const sentBefore = state.bytesSent;

    // a new call is what a restarted agent does: it only has the files
    const result = await download({ url, dest: path });
    expect(result.sha256).toBe(sha(body)); // the re-hashed part plus the rest
    expect(result.resumedFrom).toBe(kept);
    expect(state.requests.at(-1)).toEqual({ range: `bytes=${kept}-`, ifRange: '"v1"', status: 206 });
    expect(state.bytesSent - sentBefore).toBe(SIZE - kept);
    expect((await readFile(path)).equals(body)).toBe(true);
  });

  it('starts over when the artifact changed (If-Range no longer matches)', async () => {
    const body = randomBytes(SIZE);
    const { state, url } = await artifactServer(body);
    const path = await dest();
    state.cutAfter = 100_000;
    await expect(download({ url, dest: path })).rejects.toThrow(/interrupted|failed/);
    state.etag = '"v2"';
    const result = await download({ url, dest: path });
    expect(state.requests.at(-1)?.status).toBe(200);
    expect(result).toMatchObject({ size: SIZE, sha256: sha(body) });
  });

  it('starts over when the server ignores the range', async () => {
    const body = randomBytes(SIZE);
    const { state, url } = await artifactServer(body);
    const path = await dest();
    state.cutAfter = 100_000;
    await expect(download({ url, dest: path })).rejects.toThrow();
    state.ignoreRange = true;
    expect((await download({ url, dest: path })).sha256).toBe(sha(body));
  });

  it('finishes without a body when the part is already complete (416)', async () => {
    const body = randomBytes(50_000);
    const { state, url } = await artifactServer(body);
    const path = await dest();
    // a kill after the last byte was written but before the rename
    await writeFile(`${path}.part`, body);
    await writeFile(`${path}.part.json`, JSON.stringify({ url, etag: '"v1"' }));
    const result = await download({ url, dest: path });
    expect(result.sha256).toBe(sha(body));
    expect(state.requests).toEqual([{ range: 'bytes=50000-', ifRange: '"v1"', status: 416 }]);
    expect(state.bytesSent).toBe(0);
  });

  it('hashes a file already complete instead of downloading', async () => {
    const path = await dest();
    await writeFile(path, 'done');
    const result = await download({ url: 'http://127.0.0.1:9/never', dest: path });
    expect(result.sha256).toBe(sha(Buffer.from('done')));
  });

  it('stops on abort, keeping what it has for later', async () => {
    const body = randomBytes(SIZE);
    const { url } = await artifactServer(body);
    const path = await dest();
    const controller = new AbortController();
    const attempt = download({
      url,
      dest: path,
      signal: controller.signal,
      onProgress: (done) => {
        if (done > 200_000) controller.abort();
      },
    });
    await expect(attempt).rejects.toThrow(/abort/i);
    expect((await stat(`${path}.part`)).size).toBeGreaterThan(200_000);
    expect((await download({ url, dest: path })).sha256).toBe(sha(body));
  });

  it('calls a 4xx permanent and a network failure transient', async () => {
    const { url } = await artifactServer(Buffer.from('x'));
    const refused = await download({ url: `${url}-gone`, dest: await dest() }).catch((e: DownloadError) => e);
    expect(refused).toMatchObject({ status: 404, permanent: true, message: 'download failed: HTTP 404' });
    const down = await download({ url: 'http://127.0.0.1:9/x', dest: await dest() }).catch(
      (e: DownloadError) => e,
    );
    expect(down).toMatchObject({ permanent: false });
  });

  it('parses Content-Range', () => {
    expect(parseContentRange('bytes 100-199/200')).toEqual({ start: 100, total: 200 });
    expect(parseContentRange('bytes */200')).toEqual({ total: 200 });
    expect(parseContentRange('junk')).toBeUndefined();
  });
});
