/**
 * Every answer of the server is `{"error":{"code","message"}}`, whatever refused the request: Node's HTTP
 * parser, Fastify's router, a download's Range, a server shutting down. Raw sockets send what inject()
 * cannot (bad header bytes, URLs over 16 KB, Transfer-Encoding: identity).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';

let t: TestApp;
let port: number;
beforeAll(async () => {
  // No dashboard: its wildcard route would answer an unmatched long path segment 404 before the router's 414.
  t = await testApp(undefined, { webRoot: tempDir('fleetd-noweb-') });
  port = Number(new URL(await t.app.listen({ port: 0, host: '127.0.0.1' })).port);
});
afterAll(() => t.close());

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Writes bytes as they are to a fresh connection and reads the one answer until the server closes it. */
function send(request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    // The server may reset a connection it refuses while bytes are still arriving: what it sent is kept.
    socket.on('error', () => {});
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP answer: ${JSON.stringify(text)}`));
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let body = text.slice(end + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({
        status: Number(statusLine!.split(' ')[1]),
        headers,
        body: body === '' ? '' : JSON.parse(body),
      });
    });
    socket.write(request);
  });
}

function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const line = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, line), 16);
    if (!size) return out;
    out += rest.slice(line + 2, line + 2 + size);
    rest = rest.slice(line + 2 + size + 2);
  }
}

const get = (target: string, headers = 'Host: fleetd\r\n') =>
  `GET ${target} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`;

function expectShape(answer: { status: number; body: unknown }, status: number, code: string) {
  expect(answer.status).toBe(status);
  expect(answer.body).toEqual({ error: { code, message: expect.any(String) } });
}

describe("answers of Node's HTTP parser", () => {
  it('a URL with a 100,000-character filter is 431 HEADERS_TOO_LARGE in the error shape', async () => {
    const answer = await send(get(`/api/v1/devices?filter=${'a'.repeat(100_000)}`));
    expectShape(answer, 431, 'HEADERS_TOO_LARGE');
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
  });

  it('headers over 16 KB are 431 HEADERS_TOO_LARGE', async () => {
    expectShape(
      await send(get('/healthz', `Host: fleetd\r\nX-Big: ${'b'.repeat(20_000)}\r\n`)),
      431,
      'HEADERS_TOO_LARGE',
    );
  });

  it('a control byte in a header value is 400 MALFORMED_REQUEST naming the fault', async () => {
    const answer = await send(get('/healthz', 'Host: fleetd\r\nX-Bad: a\x01b\r\n'));
    expectShape(answer, 400, 'MALFORMED_REQUEST');
    expect((answer.body as { error: { message: string } }).error.message).toMatch(/header value/);
  });

  it('a space in a header name is 400 MALFORMED_REQUEST', async () => {
    expectShape(await send(get('/healthz', 'Host: fleetd\r\nX Bad: a\r\n')), 400, 'MALFORMED_REQUEST');
  });

  it('Transfer-Encoding: identity is 400 MALFORMED_REQUEST', async () => {
    const answer = await send(
      'POST /api/v1/rollouts HTTP/1.1\r\nHost: fleetd\r\nContent-Type: application/json\r\n' +
        'Transfer-Encoding: identity\r\nConnection: close\r\n\r\n{}',
    );
    expectShape(answer, 400, 'MALFORMED_REQUEST');
    expect((answer.body as { error: { message: string } }).error.message).toMatch(/Transfer-Encoding/);
  });

  it('Content-Length with Transfer-Encoding, a bad chunk size, a bad Content-Length, an unknown method and a bad version are 400 MALFORMED_REQUEST', async () => {
    const requests = [
      'POST /api/v1/rollouts HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /api/v1/rollouts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'POST /api/v1/rollouts HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'FROB / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/9.1\r\nHost: x\r\n\r\n',
      'HELLO\r\n\r\n',
    ];
    for (const request of requests) expectShape(await send(request), 400, 'MALFORMED_REQUEST');
  });

  it('an HTTP/1.1 request without Host is 400 MALFORMED_REQUEST, not an empty answer', async () => {
    expectShape(await send(get('/healthz', '')), 400, 'MALFORMED_REQUEST');
  });

  it('an Expect other than 100-continue is 417 EXPECTATION_FAILED, not an empty answer', async () => {
    expectShape(await send(get('/healthz', 'Host: fleetd\r\nExpect: teapot\r\n')), 417, 'EXPECTATION_FAILED');
  });
});

describe("answers of Fastify's router", () => {
  const admin = () => `Host: fleetd\r\nAuthorization: ${t.admin.authorization}\r\n`;

  it('invalid percent-encoding in a path is 400 MALFORMED_REQUEST', async () => {
    expectShape(await send(get('/api/v1/devices/%E0%A4%A', admin())), 400, 'MALFORMED_REQUEST');
  });

  it('percent-encoding that is not UTF-8 in a path is 400 MALFORMED_REQUEST', async () => {
    expectShape(await send(get('/api/v1/devices/%FF', admin())), 400, 'MALFORMED_REQUEST');
  });

  it('a device id as long as the schema allows reaches the route; a longer one is refused by the schema', async () => {
    expectShape(await send(get(`/api/v1/devices/d${'a'.repeat(127)}`, admin())), 404, 'DEVICE_NOT_FOUND');
    expectShape(await send(get(`/api/v1/devices/d${'a'.repeat(200)}`, admin())), 400, 'VALIDATION');
  });

  it('a path segment over 1,024 characters is 414 URI_TOO_LONG', async () => {
    expectShape(await send(get(`/api/v1/devices/${'a'.repeat(2000)}`, admin())), 414, 'URI_TOO_LONG');
  });

  it('an unknown route or method is 404 NOT_FOUND', async () => {
    expectShape(await send(get('/nothing/here')), 404, 'NOT_FOUND');
    expectShape(
      await send('DELETE /healthz HTTP/1.1\r\nHost: fleetd\r\nConnection: close\r\n\r\n'),
      404,
      'NOT_FOUND',
    );
  });
});

describe('answers of a download', () => {
  it('an unsatisfiable Range (a huge one too) is 416 RANGE_NOT_SATISFIABLE with Content-Range and a body', async () => {
    const bytes = Buffer.from('firmware '.repeat(100));
    const uploaded = await t.app.inject({
      method: 'POST',
      url: '/api/v1/artifacts?name=fw&version=1.0.0&hardware=hw',
      headers: { ...t.admin, 'content-type': 'application/octet-stream' },
      payload: bytes,
    });
    expect(uploaded.statusCode).toBe(201);
    for (const range of [`bytes=${bytes.length}-`, 'bytes=99999999999999999999999999-']) {
      const answer = await t.app.inject({
        method: 'GET',
        url: '/api/v1/artifacts/fw@1.0.0/download',
        headers: { ...t.admin, range },
      });
      expectShape({ status: answer.statusCode, body: answer.json() }, 416, 'RANGE_NOT_SATISFIABLE');
      expect(answer.headers['content-range']).toBe(`bytes */${bytes.length}`);
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(answer.headers['content-disposition']).toBeUndefined();
    }
  });

  it("a static file's refusals keep their status under a code that names it, not 400 VALIDATION", async () => {
    const range = await t.app.inject({
      url: '/docs/static/swagger-ui.css',
      headers: { range: 'bytes=99999999999999999999999-' },
    });
    expectShape({ status: range.statusCode, body: range.json() }, 416, 'RANGE_NOT_SATISFIABLE');
    const precondition = await t.app.inject({
      url: '/docs/static/swagger-ui.css',
      headers: { 'if-match': '"x"' },
    });
    expectShape({ status: precondition.statusCode, body: precondition.json() }, 412, 'PRECONDITION_FAILED');
  });
});

describe('a server shutting down', () => {
  it('answers a request that reaches it while it closes 503 SHUTTING_DOWN in the error shape', async () => {
    const own = await testApp(undefined, { webRoot: tempDir('fleetd-noweb-') });
    const ownPort = Number(new URL(await own.app.listen({ port: 0, host: '127.0.0.1' })).port);
    // A connection busy with an event stream stays open while the server drains; a request pipelined behind
    // it arrives after closing began.
    const socket = connect(ownPort, '127.0.0.1');
    let text = '';
    const streaming = new Promise<void>((resolve) =>
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.includes('fleetd event stream')) resolve();
      }),
    );
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write(
      `GET /api/v1/events/stream HTTP/1.1\r\nHost: fleetd\r\nAuthorization: ${own.admin.authorization}\r\n\r\n`,
    );
    await streaming;
    const closing = own.app.close();
    await expect.poll(() => own.app.server.listening).toBe(false);
    socket.write('GET /healthz HTTP/1.1\r\nHost: fleetd\r\nConnection: close\r\n\r\n');
    await closed;
    await closing;
    await own.store.close();
    const second = text.slice(text.lastIndexOf('HTTP/1.1 '));
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'SHUTTING_DOWN', message: expect.any(String) },
    });
  });
});
