/**
 * The artifact upload takes the request body as bytes, whatever its content type says, over a real socket
 * (chunked or with a length), and refuses an empty artifact.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../src/artifacts/blob-store.js';
import { type TestApp, testApp } from './support/app.js';
import { testRelease } from './support/stores.js';

let t: TestApp;
let base: string;
beforeEach(async () => {
  t = await testApp();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await t.close();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Answer {
  status: number;
  body: { error?: { code: string; message: string }; size?: number; sha256?: string; id?: string };
}

/** POSTs the bytes as one write, with a Content-Length, or chunked in pieces (no length). */
function post(
  path: string,
  body: Buffer,
  opts: { contentType?: string | undefined; chunked: boolean; headers?: Record<string, string> },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...t.admin, ...opts.headers };
    if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
    if (opts.chunked) headers['transfer-encoding'] = 'chunked';
    else headers['content-length'] = String(body.length);
    const req = request(`${base}${path}`, { method: 'POST', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString() || '{}') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.chunked) {
      for (let at = 0; at < body.length; at += 7_919) req.write(body.subarray(at, at + 7_919));
      req.end();
    } else req.end(body);
  });
}

const CONTENT_TYPES = [
  'text/plain',
  'text/plain; charset=utf-8',
  'application/json',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  undefined,
];

describe('uploading an artifact whatever its content type', () => {
  it('stores exactly the bytes sent (or refuses them with a 4xx), never altered bytes', async () => {
    let n = 0;
    for (const contentType of CONTENT_TYPES) {
      for (const chunked of [true, false]) {
        const bytes = randomBytes(100_000);
        const version = `1.0.${n++}`;
        const r = await post(`/api/v1/artifacts?name=fw&version=${version}&hardware=hw`, bytes, {
          contentType,
          chunked,
        });
        const label = `${contentType ?? 'no content type'}, ${chunked ? 'chunked' : 'with a length'}`;
        expect(r.status, `${label}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
        if (r.status >= 400) {
          expect(r.body.error?.code, label).toBeTypeOf('string');
          continue;
        }
        expect(r.status, label).toBe(201);
        expect({ size: r.body.size, sha256: r.body.sha256 }, label).toEqual({
          size: bytes.length,
          sha256: sha(bytes),
        });
        const download = await t.app.inject({
          method: 'GET',
          url: `/api/v1/artifacts/fw@${version}/download`,
          headers: t.admin,
        });
        expect(download.rawPayload.equals(bytes), label).toBe(true);
      }
    }
  });

  it('takes a JSON-looking body as bytes too (it once answered 500 "stream is not async iterable")', async () => {
    const bytes = Buffer.from('{"firmware": "this is a JSON file shipped as an artifact"}');
    const r = await post('/api/v1/artifacts?name=cfg&version=1.0.0&hardware=hw&type=file', bytes, {
      contentType: 'application/json',
      chunked: false,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.sha256).toBe(sha(bytes));
  });
});

describe('an empty artifact', () => {
  it('is refused with a 400 that says so, with or without a length, and nothing is stored', async () => {
    for (const chunked of [true, false]) {
      for (const contentType of ['application/octet-stream', undefined]) {
        const r = await post('/api/v1/artifacts?name=fw&version=1.0.0&hardware=hw', Buffer.alloc(0), {
          contentType,
          chunked,
        });
        expect(r.status, JSON.stringify(r.body)).toBe(400);
        expect(r.body.error).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/empty/) });
      }
    }
    const list = await t.app.inject({ method: 'GET', url: '/api/v1/artifacts', headers: t.admin });
    expect(list.json().artifacts).toEqual([]);
  });
});

describe('an empty artifact stored before empty uploads were refused', () => {
  it('downloads as an empty body, not as a 400 "bad byte range"', async () => {
    const empty = await new FsBlobStore(t.dataDir).put(Readable.from([]));
    await t.store.releases.create(
      { ...testRelease('rel_empty', '1.0.0', t.clock.now()), size: 0, sha256: empty.sha256 },
      'test',
    );
    const url = '/api/v1/artifacts/rel_empty/download';
    const full = await t.app.inject({ method: 'GET', url, headers: t.admin });
    expect(full.statusCode, full.body).toBe(200);
    expect(full.headers['content-length']).toBe('0');
    expect(full.rawPayload.length).toBe(0);
    const head = await t.app.inject({ method: 'HEAD', url, headers: t.admin });
    expect(head.statusCode).toBe(200);
    const resume = await t.app.inject({ method: 'GET', url, headers: { ...t.admin, range: 'bytes=0-' } });
    expect(resume.statusCode).toBe(416);
    expect(resume.headers['content-range']).toBe('bytes */0');
  });
});
