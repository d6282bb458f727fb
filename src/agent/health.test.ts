import { mkdtemp } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { checkHealth, healthCheckFromFlags, probe } from './health.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

/** Retries without waiting for real: each pause moves a manual clock. */
function virtualTime() {
  const clock = new ManualClock(0);
  let pauses = 0;
  return {
    clock,
    sleep: async (ms: number) => {
      pauses += 1;
      clock.advance(ms);
    },
    pauses: () => pauses,
  };
}

describe('health check', () => {
  it('passes on a command that exits 0', async () => {
    expect(await checkHealth({ kind: 'command', command: 'true' }, { deadlineMs: 1000 })).toEqual({
      ok: true,
      value: undefined,
    });
  });

  it('retries a failing command until the deadline, then gives its last reason', async () => {
    const t = virtualTime();
    const result = await checkHealth(
      { kind: 'command', command: 'exit 1' },
      { deadlineMs: 10_000, intervalMs: 1000, clock: t.clock, sleep: t.sleep },
    );
    expect(result).toEqual({ ok: false, reason: 'health check failed: exit 1' });
    expect(t.pauses()).toBe(9);
  });

  it('passes once the service comes up within the deadline', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleetd-health-'));
    const t = virtualTime();
    // fails twice, then succeeds: a service that needs a moment to start
    const command = `n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ "$n" -ge 2 ]`;
    const result = await checkHealth(
      { kind: 'command', command },
      { deadlineMs: 10_000, intervalMs: 1000, clock: t.clock, sleep: t.sleep, cwd: dir },
    );
    expect(result.ok).toBe(true);
    expect(t.pauses()).toBe(2);
  });

  it('times out a command that hangs', async () => {
    expect(await probe({ kind: 'command', command: 'sleep 10' }, 200)).toBe('timed out after 200ms');
  });

  it('wants a 2xx from an HTTP check', async () => {
    let status = 503;
    const server = createHttpServer((_req, res) => res.writeHead(status).end());
    const port = await listen(server as unknown as Server);
    const check = { kind: 'http' as const, url: `http://127.0.0.1:${port}/health` };
    expect(await probe(check, 1000)).toBe('HTTP 503');
    status = 204;
    expect(await probe(check, 1000)).toBeUndefined();
  });

  it('connects for a TCP check', async () => {
    const port = await listen(createTcpServer((s) => s.end()));
    expect(await probe({ kind: 'tcp', host: '127.0.0.1', port }, 1000)).toBeUndefined();
    const closed = await listen(createTcpServer());
    await new Promise((r) => servers.pop()!.close(r));
    expect(await probe({ kind: 'tcp', host: '127.0.0.1', port: closed }, 1000)).toMatch(/ECONNREFUSED/);
  });

  it('reads the CLI flags', () => {
    expect(healthCheckFromFlags({})).toBeUndefined();
    expect(healthCheckFromFlags({ healthCmd: 'systemctl is-active app' })).toEqual({
      kind: 'command',
      command: 'systemctl is-active app',
    });
    expect(healthCheckFromFlags({ healthTcp: 'localhost:8080' })).toEqual({
      kind: 'tcp',
      host: 'localhost',
      port: 8080,
    });
    expect(healthCheckFromFlags({ healthTcp: '[::1]:22' })).toEqual({ kind: 'tcp', host: '::1', port: 22 });
    expect(healthCheckFromFlags({ healthUrl: 'http://localhost:8080/health' })).toMatchObject({
      kind: 'http',
    });
    expect(() => healthCheckFromFlags({ healthTcp: 'nope' })).toThrow(/HOST:PORT/);
    expect(() => healthCheckFromFlags({ healthCmd: 'x', healthUrl: 'http://y' })).toThrow(/at most one/);
  });
});
