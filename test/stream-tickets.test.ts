/**
 * No API token in a URL: the event stream takes the Authorization header or a stream ticket (one stream,
 * within 60 s, nothing else), `?access_token=` is refused, and no log line carries a token or a ticket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TICKET_TTL_MS } from '../src/server/stream-tickets.js';
import { type TestApp, testApp } from './support/app.js';

let t: TestApp;
const logged: string[] = [];
afterEach(async () => {
  await t.close();
  logged.length = 0;
});

async function start() {
  t = await testApp(undefined, { log: { level: 'trace', write: (line) => logged.push(line) } });
  return t.app.listen({ port: 0, host: '127.0.0.1' });
}

async function issue(headers: Record<string, string> = t.admin, query = '') {
  return t.app.inject({ method: 'POST', url: `/api/v1/events/stream-ticket${query}`, headers });
}

async function ticket(): Promise<string> {
  const r = await issue();
  expect(r.statusCode).toBe(201);
  const body = r.json();
  expect(Date.parse(body.expires_at)).toBe(t.clock.now() + TICKET_TTL_MS);
  return body.ticket;
}

/** Opens the stream and reads its first bytes (status 200) or its error answer. */
async function open(base: string, query: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const response = await fetch(`${base}/api/v1/events/stream?${query}`, { headers, signal: abort.signal });
  if (response.status !== 200) {
    return {
      status: response.status,
      body: (await response.json()) as { error: { code: string; message: string } },
    };
  }
  const reader = response.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  abort.abort();
  return { status: 200, body: first };
}

describe('stream tickets', () => {
  it('a ticket opens the event stream once; the second use is refused in the error shape', async () => {
    const base = await start();
    const one = await ticket();
    const first = await open(base, `ticket=${one}`);
    expect(first).toEqual({ status: 200, body: expect.stringContaining('fleetd event stream') });
    const again = await open(base, `ticket=${one}`);
    expect(again.status).toBe(401);
    expect(again.body).toEqual({
      error: { code: 'UNAUTHENTICATED', message: expect.stringMatching(/already used/) },
    });
  });

  it('a ticket opens the stream up to 60 s after it was issued, not at 60 s', async () => {
    const base = await start();
    const early = await ticket();
    const late = await ticket();
    t.clock.advance(TICKET_TTL_MS - 1);
    expect((await open(base, `ticket=${early}`)).status).toBe(200);
    t.clock.advance(1);
    expect((await open(base, `ticket=${late}`)).status).toBe(401);
  });

  it('a ticket opens nothing but the stream, not even another ticket', async () => {
    const base = await start();
    const one = await ticket();
    const devices = await t.app.inject({ url: `/api/v1/devices?ticket=${one}` });
    expect(devices.statusCode).toBe(401);
    expect((await issue({}, `?ticket=${one}`)).statusCode).toBe(401);
    // Refused elsewhere, it was not spent: it still opens the stream.
    expect((await open(base, `ticket=${one}`)).status).toBe(200);
  });

  it('a ticket needs a valid token to be issued', async () => {
    await start();
    expect((await issue({})).statusCode).toBe(401);
    expect((await issue({ authorization: 'Bearer fld_admin_wrong' })).statusCode).toBe(401);
  });

  it('the Authorization header still opens the stream', async () => {
    const base = await start();
    expect((await open(base, 'after=0', t.admin)).status).toBe(200);
  });
});

describe('an API token in a URL', () => {
  it('is refused with 400 VALIDATION saying what to send instead, even next to a valid header', async () => {
    const base = await start();
    for (const headers of [{}, t.admin]) {
      const refused = await open(base, `access_token=${t.adminToken}`, headers);
      expect(refused).toEqual({
        status: 400,
        body: {
          error: {
            code: 'VALIDATION',
            message: expect.stringMatching(/Authorization: Bearer.*stream-ticket/),
          },
        },
      });
    }
    const elsewhere = await t.app.inject({ url: `/api/v1/devices?access_token=${t.adminToken}` });
    expect(elsewhere.statusCode).toBe(400);
  });

  it('never reaches a log line, nor does a ticket, whatever the request was', async () => {
    const base = await start();
    const one = await ticket();
    await open(base, `ticket=${one}`);
    await open(base, `ticket=${one}`);
    await open(base, `access_token=${t.adminToken}`);
    await open(base, `after=oops&ticket=${await ticket()}`);
    await t.app.inject({ url: `/api/v1/nothing?access_token=${t.adminToken}`, headers: t.admin });
    await t.app.inject({ url: `/api/v1/devices/%FF?token=${t.adminToken}` });
    await t.app.inject({ url: `/api/v1/devices?filter=(((&token=${t.adminToken}`, headers: t.admin });
    expect(logged.length).toBeGreaterThan(0); // the logger is live: the server's start is logged
    const log = logged.join('');
    expect(log).not.toContain(t.adminToken);
    expect(log).not.toContain(one);
    expect(log).not.toMatch(/fld_(admin|ticket)_/);
  });
});
