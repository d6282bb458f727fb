/**
 * A real agent (in-process, over HTTP to a listening server on SQLite) follows its connectivity class: enrolled
 * after its class was made, it is asked for the server's interval until the sweep puts it in the class, then for
 * the class's hour — and waits that long (± the agent's 10 % jitter) before its next heartbeat.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Agent } from '../src/agent/agent.js';
import { silentLogger } from '../src/agent/log.js';
import { seededRandom } from '../src/agent/schedule.js';
import { testApp } from './support/app.js';

it('an hourly sensor agent is asked for an hour once the sweep puts it in its class, and waits it', async () => {
  const t = await testApp(Date.parse('2026-12-01T08:00:00Z'));
  try {
    const url = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const api = async (method: 'POST' | 'PUT', path: string, payload: object) => {
      const r = await t.app.inject({ method, url: path, headers: t.admin, payload });
      expect(r.statusCode).toBeLessThan(300);
      return r.json() as Record<string, unknown>;
    };
    await api('PUT', '/api/v1/connectivity-classes/hourly-sensors', {
      match: { hardware: 'sensor-v2' },
      heartbeat_interval: '1h',
      offline_after: '3h',
      abandoned_after: '30d',
    });
    const { token } = await api('POST', '/api/v1/enrollment-tokens', {});
    const agent = new Agent({
      server: url,
      deviceId: 'sensor-0001',
      hardwareType: 'sensor-v2',
      stateDir: await mkdtemp(join(tmpdir(), 'fleetd-connectivity-agent-')),
      publicKey: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      firmwareVersion: '1.0.0',
      random: seededRandom(7),
      log: silentLogger,
      enrollToken: String(token),
    });
    // Enrolled just now: in no class until the sweep resolves it, so the server's 300 s.
    const first = await agent.runOnce();
    expect(first).toBeGreaterThanOrEqual(270_000);
    expect(first).toBeLessThanOrEqual(330_000);
    await t.sweeper.sweep();
    const second = await agent.runOnce();
    expect(second).toBeGreaterThanOrEqual(3_240_000);
    expect(second).toBeLessThanOrEqual(3_960_000);
  } finally {
    await t.close();
  }
});
