/** The server side of the dashboard: static serving next to the API, and the newest-first event listing. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDashboard } from '../src/server/dashboard.js';
import { type TestApp, testApp } from './support/app.js';
import { tempDir } from './support/processes.js';

describe('serving the dashboard', () => {
  it('serves index.html at / (revalidated) and hashed assets as immutable; the API keeps its JSON 404', async () => {
    const root = tempDir('fleetd-web-');
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), '<div id="app"></div>');
    writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
    const app = Fastify();
    app.get('/api/v1/thing', async () => ({ ok: true }));
    app.setNotFoundHandler((_request, reply) => reply.status(404).send({ error: { code: 'NOT_FOUND' } }));
    await serveDashboard(app, root);

    const index = await app.inject('/');
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toMatch(/text\/html/);
    expect(index.headers['cache-control']).toBe('no-cache');
    expect(index.body).toContain('<div id="app">');
    const asset = await app.inject('/assets/index-abc123.js');
    expect(asset.headers['cache-control']).toContain('immutable');
    expect((await app.inject('/api/v1/thing')).json()).toEqual({ ok: true });
    const missing = await app.inject('/api/v1/rollouts');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: { code: 'NOT_FOUND' } });
    await app.close();
  });

  it('says how to build the dashboard when it is not built', async () => {
    const app = Fastify();
    await serveDashboard(app, tempDir('fleetd-noweb-'));
    const reply = await app.inject('/');
    expect(reply.statusCode).toBe(200);
    expect(reply.body).toMatch(/npm run build/);
    await app.close();
  });
});

describe('GET /api/v1/events/recent', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
    const devices = Array.from({ length: 5 }, (_, i) => ({ id: `d${i}`, last_seen: null }));
    const r = await t.app.inject({
      method: 'POST',
      url: '/api/v1/devices/import',
      headers: t.admin,
      payload: { devices },
    });
    expect(r.statusCode).toBe(200);
  });
  afterAll(() => t.close());

  const recent = async (query: string) => {
    const r = await t.app.inject({ url: `/api/v1/events/recent?${query}`, headers: t.admin });
    expect(r.statusCode).toBe(200);
    return r.json() as { events: Array<{ id: number; device_id: string }>; next_before: number | null };
  };

  it('lists newest first and pages back with next_before', async () => {
    const all = await recent('limit=1000');
    const ids = all.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(all.next_before).toBeNull();
    const first = await recent('limit=2');
    expect(first.events.map((e) => e.id)).toEqual(ids.slice(0, 2));
    const second = await recent(`limit=2&before=${first.next_before}`);
    expect(second.events.map((e) => e.id)).toEqual(ids.slice(2, 4));
  });

  it('filters by device and type prefix', async () => {
    const one = await recent('device=d3&type=device.');
    expect(one.events.length).toBeGreaterThan(0);
    expect(new Set(one.events.map((e) => e.device_id))).toEqual(new Set(['d3']));
    expect((await recent('type=nothing.')).events).toEqual([]);
  });

  it('needs a token', async () => {
    expect((await t.app.inject({ url: '/api/v1/events/recent' })).statusCode).toBe(401);
  });
});

describe('security headers', () => {
  let t: TestApp;
  beforeAll(async () => {
    const webRoot = tempDir('fleetd-web-');
    mkdirSync(join(webRoot, 'assets'));
    writeFileSync(join(webRoot, 'index.html'), '<div id="app"></div>');
    writeFileSync(join(webRoot, 'assets', 'index-abc123.js'), 'console.log(1)');
    t = await testApp(undefined, { webRoot });
  });
  afterAll(() => t.close());

  const headersOf = async (url: string, headers: Record<string, string> = {}) => {
    const r = await t.app.inject({ url, headers });
    return { status: r.statusCode, type: String(r.headers['content-type']), ...r.headers };
  };
  const expectLocked = (h: Record<string, unknown>) => {
    expect(h['x-content-type-options']).toBe('nosniff');
    expect(h['x-frame-options']).toBe('DENY');
    expect(h['referrer-policy']).toBe('no-referrer');
    expect(h['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(h['content-security-policy']).toContain("object-src 'none'");
  };

  it('the dashboard may run only its own scripts: no inline script, no framing, no referrer', async () => {
    for (const url of ['/', '/assets/index-abc123.js']) {
      const h = await headersOf(url);
      expect(h.status).toBe(200);
      expectLocked(h);
      expect(h['content-security-policy']).toContain("script-src 'self';");
      expect(h['content-security-policy']).not.toContain('unsafe');
    }
  });

  it('the API docs (/docs) carry the same protections', async () => {
    for (const url of ['/docs/', '/docs/json', '/docs/static/swagger-ui-bundle.js']) {
      const h = await headersOf(url);
      expect(h.status).toBe(200);
      expectLocked(h);
      expect(h['content-security-policy']).toContain("script-src 'self';");
      expect(h['content-security-policy']).not.toContain('unsafe-eval');
    }
  });

  it('API answers, errors and downloads load nothing and cannot be framed', async () => {
    const upload = await t.app.inject({
      method: 'POST',
      url: '/api/v1/artifacts?name=fw&version=1.0.0&hardware=hw',
      headers: { ...t.admin, 'content-type': 'application/octet-stream' },
      payload: Buffer.from('firmware'),
    });
    expect(upload.statusCode).toBe(201);
    for (const [url, headers, status] of [
      ['/api/v1/devices', t.admin, 200],
      ['/api/v1/devices', {}, 401],
      ['/api/v1/nothing', t.admin, 404],
      ['/api/v1/artifacts/fw@1.0.0/download', t.admin, 200],
      ['/healthz', {}, 200],
    ] as const) {
      const h = await headersOf(url, headers);
      expect(h.status, url).toBe(status);
      expectLocked(h);
      expect(h['content-security-policy']).toMatch(/^default-src 'none'/);
    }
  });
});
