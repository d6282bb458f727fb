/**
 * What a 200 means: a heartbeat, registration or import that was acknowledged survives `kill -9` of the
 * server at any instant. The server is killed while requests are in flight, then restarted on the same data.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnServer, tempDir } from './support/processes.js';

async function call(url: string, path: string, token: string, body?: unknown) {
  const r = await fetch(`${url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe('durability across kill -9', () => {
  it('every acknowledged import, enrollment and heartbeat is there after a crash', async () => {
    const data = tempDir();
    let server = await spawnServer(data);
    const admin = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    const count = 400;
    const devices = Array.from({ length: count }, (_, i) => ({ id: `dev-${i}`, hardware_type: 'hw' }));
    expect((await call(server.url, '/api/v1/devices/import', admin, { devices })).status).toBe(200);

    const enroll = await call(server.url, '/api/v1/enrollment-tokens', admin, { uses: 1 });
    const enrolled = await fetch(`${server.url}/api/device/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrollment_token: enroll.body.token, device_id: 'self-registered' }),
    });
    expect(enrolled.status).toBe(201);
    const selfCredential = ((await enrolled.json()) as { credential: string }).credential;

    const credentials = new Map<string, string>();
    for (const d of devices) {
      const r = await call(server.url, `/api/v1/devices/${d.id}/credential`, admin, {});
      credentials.set(d.id, r.body.credential as string);
    }

    // Heartbeats in flight from every device; kill -9 once some have been acknowledged.
    const acknowledged: string[] = [];
    let killed = false;
    const inFlight = devices.map(async (d, i) => {
      await new Promise((r) => setTimeout(r, i % 50));
      try {
        const r = await call(server.url, '/api/device/v1/heartbeat', credentials.get(d.id)!, {
          device_id: d.id,
        });
        if (r.status === 200) acknowledged.push(d.id);
      } catch {
        // connection cut by the kill: not acknowledged, so nothing is promised
      }
      if (!killed && acknowledged.length >= count / 4) {
        killed = true;
        server.child.kill('SIGKILL');
      }
    });
    await Promise.all(inFlight);
    await server.kill('SIGKILL');
    expect(acknowledged.length).toBeGreaterThanOrEqual(count / 4);

    server = await spawnServer(data);
    try {
      const online = new Set<string>();
      let cursor: string | null = null;
      do {
        const page = await call(
          server.url,
          `/api/v1/devices?filter=${encodeURIComponent('status=online')}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
          admin,
        );
        for (const d of page.body.devices as Array<{ id: string }>) online.add(d.id);
        cursor = page.body.next_cursor as string | null;
      } while (cursor);
      const lost = acknowledged.filter((id) => !online.has(id));
      expect(lost).toEqual([]);
      const stats = await call(server.url, '/api/v1/fleet/stats', admin);
      expect(stats.body.total).toBe(count + 1);
      const again = await call(server.url, '/api/device/v1/heartbeat', selfCredential, {
        device_id: 'self-registered',
      });
      expect(again.status).toBe(200);
    } finally {
      await server.kill();
    }
  });
});
