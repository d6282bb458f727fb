/**
 * The server the fuzz suite attacks: the real composition root (createServer) on SQLite or PostgreSQL, on a
 * manual clock, seeded with a small world (devices with credentials, releases, an update in progress,
 * rollouts, a webhook, an enrollment token) whose ids feed the generators, and listening on a loopback port
 * for the cases only a socket can send. It answers each fuzz request, probes /healthz meanwhile, and checks
 * afterwards that the server still works (nothing poisonous was stored).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/core/clock.js';
import { RolloutEngine } from '../../src/engine/rollout-engine.js';
import { hashSecret, newId } from '../../src/registry/credentials.js';
import { createServer, type ServerParts } from '../../src/server/serve.js';
import type { FuzzAuth, FuzzHints, FuzzRequest } from './fuzz-generators.js';
import { type FuzzOperation, fuzzOperations, type OpenApiDocument } from './fuzz-operations.js';
import { installDirector } from './tuf.js';

export const FUZZ_START = Date.parse('2026-11-22T12:00:00Z');

/** The devices, release and spec of the health checks: kept out of the generators' pools. */
const CANARY = 'fuzz-canary';
const SELF = 'fuzz-device';
const OTHER = 'dev-002';
const CANARY_RELEASE = 'canary-fw@1.0.0';
const ENROLLMENT_TOKEN = 'enroll_fuzz-known-token';
/**
 * The admin's own address. The cases come from 127.0.0.1, and past 20 failed authentications that address is
 * refused for the rest of the minute (the manual clock barely moves): the admin's reads of the world must not be.
 */
const ADMIN_ADDRESS = '192.0.2.10';

export interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
  /** From sending to the whole answer (streams: to their first bytes), in ms. */
  ms: number;
  /** Set when no answer came: the connection dropped or nothing arrived in time. */
  noAnswer?: string;
}

export interface HealthzProbe {
  /** Whether every probe sent while the case ran got 200. */
  answered: boolean;
  /** The longest a probe waited, counted from when it was due (a late timer counts). */
  maxMs: number;
}

type Opened = { parts: ServerParts; dataDir: string; port: number; adminToken: string };

export class FuzzTarget {
  readonly hints: FuzzHints = {
    deviceIds: [],
    selfDeviceId: SELF,
    updateIds: [],
    rolloutIds: [],
    releaseRefs: [],
    sha256s: [],
    webhookIds: [],
    enrollmentToken: ENROLLMENT_TOKEN,
    hardware: ['hw-a', 'hw-b'],
  };
  operations: FuzzOperation[] = [];
  /** What the rollout engine logged as errors or warnings since the last look. */
  readonly engineLog: string[] = [];
  /** Resets done after a poisoned state. */
  resets = 0;
  private credentials = new Map<string, string>();
  /** The operator credential cases are sent with, when not the admin token (test/fuzz-principals.test.ts). */
  private operatorAuthorization: string | undefined;
  private engine!: RolloutEngine;
  private server!: Opened;
  readonly clock = new ManualClock(FUZZ_START);

  private constructor(private readonly database: () => Promise<string | undefined>) {}

  /** `database` gives a fresh, empty database each time it is called (undefined: a SQLite file). */
  static async open(database: () => Promise<string | undefined>): Promise<FuzzTarget> {
    const target = new FuzzTarget(database);
    await target.start();
    return target;
  }

  get app() {
    return this.server.parts.app;
  }

  private async start(): Promise<void> {
    const dataDir = mkdtempSync(join(tmpdir(), 'fleetd-fuzz-'));
    this.clock.set(FUZZ_START);
    // The director's routes answer as on a server that has one (its own ceremony, docs/signing.md).
    await installDirector(dataDir, FUZZ_START);
    const parts = await createServer({
      dataDir,
      db: await this.database(),
      clock: this.clock,
      logLevel: 'silent',
      replicaId: 'fuzz',
      maxArtifactBytes: 16 * 1024 * 1024,
    });
    await parts.app.listen({ port: 0, host: '127.0.0.1' });
    const address = parts.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    this.server = { parts, dataDir, port, adminToken: parts.adminToken! };
    this.engine = new RolloutEngine(parts.store, this.clock, parts.thresholds, {
      owner: 'fuzz',
      log: {
        error: (obj, msg) => this.engineLog.push(`error: ${msg} ${describeLog(obj)}`),
        warn: (obj, msg) => this.engineLog.push(`warn: ${msg} ${describeLog(obj)}`),
      },
    });
    this.operations = fuzzOperations(parts.app.swagger() as unknown as OpenApiDocument);
    await this.seed();
  }

  /** Closes the server and deletes its data; the database (a PostgreSQL schema) is the caller's to drop. */
  async close(): Promise<void> {
    const { parts, dataDir } = this.server;
    await parts.app.close();
    await parts.store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }

  /** A fresh database and world, after a case left the server unable to work. */
  async reset(): Promise<void> {
    this.resets++;
    await this.close();
    await this.start();
  }

  /** Sends the operator cases with this token from now on (the world's seed and checks stay the admin's). */
  actAs(token: string): void {
    this.operatorAuthorization = `Bearer ${token}`;
  }

  /** A request as the admin, whatever the cases are sent as: for seeding principals and reading the world. */
  asAdmin(method: 'GET' | 'POST', url: string, body?: object) {
    return this.app.inject({
      method,
      url,
      remoteAddress: ADMIN_ADDRESS,
      headers: { authorization: `Bearer ${this.server.adminToken}` },
      ...(body === undefined ? {} : { payload: body }),
    });
  }

  private async api<T = Record<string, unknown>>(method: string, url: string, body?: unknown): Promise<T> {
    const r = await this.app.inject({
      method: method as 'GET',
      url,
      remoteAddress: ADMIN_ADDRESS,
      headers: { authorization: `Bearer ${this.server.adminToken}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    if (r.statusCode >= 300) throw new Error(`fuzz seed: ${method} ${url}: ${r.statusCode} ${r.body}`);
    return r.json() as T;
  }

  private async upload(
    name: string,
    version: string,
    hardware: string[],
  ): Promise<{ id: string; sha256: string }> {
    const r = await this.app.inject({
      method: 'POST',
      url: `/api/v1/artifacts?name=${name}&version=${version}&type=firmware${hardware.map((h) => `&hardware=${h}`).join('')}`,
      remoteAddress: ADMIN_ADDRESS,
      headers: {
        authorization: `Bearer ${this.server.adminToken}`,
        'content-type': 'application/octet-stream',
      },
      payload: Buffer.from(`${name} ${version} image\n`.repeat(32)),
    });
    if (r.statusCode !== 201)
      throw new Error(`fuzz seed: upload ${name}@${version}: ${r.statusCode} ${r.body}`);
    return r.json() as { id: string; sha256: string };
  }

  private async seed(): Promise<void> {
    const victims = Array.from({ length: 8 }, (_, i) => `dev-${String(i + 1).padStart(3, '0')}`);
    const zones = ['UTC', 'Europe/Paris', 'America/New_York', 'Asia/Kolkata'];
    await this.api('POST', '/api/v1/devices/import', {
      devices: [CANARY, SELF, ...victims].map((id, i) => ({
        id,
        firmware_version: '1.0.0',
        hardware_type: i % 3 === 2 ? 'hw-b' : 'hw-a',
        timezone: zones[i % zones.length],
        tags: { region: i % 2 ? 'north' : 'west', store: String(i) },
      })),
    });
    this.credentials.clear();
    for (const id of [CANARY, SELF, OTHER]) {
      const { credential } = await this.api<{ credential: string }>(
        'POST',
        `/api/v1/devices/${id}/credential`,
      );
      this.credentials.set(id, credential);
    }
    const fw1 = await this.upload('fw', '1.0.0', ['hw-a', 'hw-b']);
    const fw2 = await this.upload('fw', '2.0.0', ['hw-a', 'hw-b']);
    await this.upload('canary-fw', '1.0.0', ['hw-a']);
    const { assigned } = await this.api<{ assigned: Array<{ id: string }> }>(
      'POST',
      '/api/v1/updates/assign',
      {
        release: 'fw@2.0.0',
        devices: [SELF, 'dev-001'],
      },
    );
    await this.heartbeat(SELF);
    const rollouts: string[] = [];
    for (const spec of [
      {
        name: 'seed-progressive',
        release: 'fw@2.0.0',
        filter: 'hardware=hw-b',
        strategy: 'progressive',
        phases: [{ percentage: 50, approval: 'manual' }, { percentage: 100 }],
      },
      { name: 'seed-scheduled', release: 'fw@1.0.0', filter: 'tag.region=north', strategy: 'on_connect' },
    ]) {
      rollouts.push((await this.api<{ id: string }>('POST', '/api/v1/rollouts', spec)).id);
    }
    const webhook = await this.server.parts.store.webhooks.create(
      {
        id: newId('wh'),
        url: 'https://hooks.example.com/fleetd',
        secret: 'fuzz-webhook-secret-0123456789',
        types: [],
        rolloutId: null,
        createdAt: this.clock.now(),
      },
      'fuzz',
    );
    await this.server.parts.store.createEnrollmentToken(
      { id: newId('enr'), usesLeft: null, expiresAt: null, tags: {}, createdAt: this.clock.now() },
      hashSecret(ENROLLMENT_TOKEN),
      'fuzz',
    );
    const h = this.hints;
    h.deviceIds.splice(0, Infinity, ...victims);
    h.updateIds.splice(0, Infinity, ...assigned.map((u) => u.id));
    h.rolloutIds.splice(0, Infinity, ...rollouts);
    h.releaseRefs.splice(0, Infinity, 'fw@1.0.0', 'fw@2.0.0', fw1.id, fw2.id);
    h.sha256s.splice(0, Infinity, fw1.sha256, fw2.sha256);
    h.webhookIds.splice(0, Infinity, webhook.id);
    this.engineLog.length = 0;
  }

  private heartbeat(id: string) {
    return this.app.inject({
      method: 'POST',
      url: '/api/device/v1/heartbeat',
      headers: { authorization: `Bearer ${this.credentials.get(id)}` },
      payload: { device_id: id, firmware_version: '1.0.0' },
    });
  }

  private authorization(auth: FuzzAuth): string | undefined {
    switch (auth) {
      case 'operator':
        return this.operatorAuthorization ?? `Bearer ${this.server.adminToken}`;
      case 'device':
        return `Bearer ${this.credentials.get(SELF)}`;
      case 'other-device':
        return `Bearer ${this.credentials.get(OTHER)}`;
      case 'unknown-token':
        return 'Bearer admin_0000000000000000000000000000';
      case 'malformed':
        return 'Basic Zm9vOmJhcg==';
      case 'empty-bearer':
        return 'Bearer ';
      case 'none':
        return undefined;
    }
  }

  /** Sends one fuzz request and measures /healthz meanwhile. */
  async send(request: FuzzRequest): Promise<{ answer: Answer; healthz: HealthzProbe }> {
    const probe = this.probeHealthz();
    const started = performance.now();
    try {
      const answer =
        request.transport === 'raw' ? await this.sendRaw(request) : await this.sendInject(request);
      return {
        answer: { ...answer, ms: answer.ms || performance.now() - started },
        healthz: await probe.stop(),
      };
    } catch (error) {
      await probe.stop();
      throw error;
    }
  }

  private async sendInject(request: FuzzRequest): Promise<Answer> {
    const authorization = this.authorization(request.auth);
    const started = performance.now();
    const r = await this.app.inject({
      method: request.method as 'GET',
      url: request.url,
      headers: { ...request.headers, ...(authorization === undefined ? {} : { authorization }) },
      ...(request.body === undefined ? {} : { payload: request.body }),
    });
    return { status: r.statusCode, headers: r.headers, body: r.rawPayload, ms: performance.now() - started };
  }

  private sendRaw(request: FuzzRequest): Promise<Answer> {
    const authorization = this.authorization(request.auth);
    const body = request.body === undefined ? undefined : Buffer.from(request.body);
    const lines = [
      'Host: 127.0.0.1',
      'Connection: close',
      ...Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`),
      ...(authorization === undefined ? [] : [`Authorization: ${authorization}`]),
      ...(request.rawHeaderLines ?? []),
    ];
    let payload = Buffer.alloc(0);
    if (body !== undefined && request.chunked) {
      lines.push('Transfer-Encoding: chunked');
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += 4096) {
        const part = body.subarray(i, i + 4096);
        chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
      }
      payload = Buffer.concat([...chunks, Buffer.from('0\r\n\r\n')]);
    } else if (body !== undefined) {
      if (!lines.some((l) => /^content-length:/i.test(l))) lines.push(`Content-Length: ${body.length}`);
      payload = body;
    }
    const target = request.rawTarget ?? Buffer.from(request.url, 'latin1');
    const head = Buffer.concat([
      Buffer.from(`${request.method} `),
      target,
      Buffer.from(` HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`, 'latin1'),
    ]);
    const streaming = this.operations.some((o) => o.streaming && o.key === request.op);
    return rawExchange(this.server.port, Buffer.concat([head, payload]), streaming);
  }

  /** Probes /healthz every 20 ms while a case runs; each probe's wait counts from when it was due. */
  private probeHealthz(): { stop(): Promise<HealthzProbe> } {
    let running = true;
    let answered = true;
    let maxMs = 0;
    const loop = (async () => {
      let due = performance.now();
      do {
        const r = await this.app.inject({ method: 'GET', url: '/healthz' });
        maxMs = Math.max(maxMs, performance.now() - due);
        if (r.statusCode !== 200) answered = false;
        due += 20;
        const wait = due - performance.now();
        if (running && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        else due = performance.now();
      } while (running);
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return { answered, maxMs };
      },
    };
  }

  /**
   * What must still work after any case: the rollout list, a heartbeat and a dry run, and an engine pass
   * without errors. Returns what did not (empty: healthy).
   */
  async checkHealthy(engineTick: boolean): Promise<string[]> {
    const problems: string[] = [];
    const admin = { authorization: `Bearer ${this.server.adminToken}` };
    const [list, beat, plan] = await Promise.all([
      this.app.inject({
        method: 'GET',
        url: '/api/v1/rollouts',
        headers: admin,
        remoteAddress: ADMIN_ADDRESS,
      }),
      this.heartbeat(CANARY),
      this.app.inject({
        method: 'POST',
        url: '/api/v1/rollouts?dry_run=true',
        headers: admin,
        remoteAddress: ADMIN_ADDRESS,
        payload: {
          name: 'fuzz-health',
          release: CANARY_RELEASE,
          filter: `id=${CANARY}`,
          strategy: 'immediate',
        },
      }),
    ]);
    if (list.statusCode !== 200 || !Array.isArray(list.json().rollouts)) {
      problems.push(`GET /api/v1/rollouts: ${list.statusCode} ${list.body.slice(0, 300)}`);
    }
    if (beat.statusCode !== 200 || !Array.isArray(beat.json().pending_updates)) {
      problems.push(`heartbeat: ${beat.statusCode} ${beat.body.slice(0, 300)}`);
    }
    if (plan.statusCode !== 200 || plan.json().dry_run !== true || typeof plan.json().targets !== 'number') {
      problems.push(`dry run: ${plan.statusCode} ${plan.body.slice(0, 300)}`);
    }
    if (engineTick) {
      this.engineLog.length = 0;
      this.clock.advance(60_000);
      await this.engine.tick();
      problems.push(...this.engineLog.map((line) => `engine ${line}`));
    }
    return problems;
  }
}

function describeLog(obj: unknown): string {
  const o = obj as { err?: unknown; rollout?: unknown };
  const err = o?.err instanceof Error ? o.err.message : '';
  return `${o?.rollout ? `rollout ${String(o.rollout)}` : ''} ${err}`.trim().slice(0, 300);
}

/** Writes `bytes` to the server, reads its first answer (a stream: only its head), and closes. */
function rawExchange(port: number, bytes: Buffer, streaming: boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (noAnswer?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseResponse(Buffer.concat(chunks));
      resolve({
        ...(parsed ?? { status: 0, headers: {}, body: Buffer.alloc(0) }),
        ms: performance.now() - started,
        ...(parsed ? {} : { noAnswer: noAnswer ?? 'the connection closed without an answer' }),
      });
    };
    const timer = setTimeout(() => finish('no answer within 10 s'), 10_000);
    socket.on('data', (d) => {
      chunks.push(d);
      // A stream that started never ends by itself: its head (and the first bytes) are the answer.
      if (streaming && parseResponse(Buffer.concat(chunks), true)) finish();
    });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.write(bytes);
  });
}

/** The first HTTP/1.1 response in `data`; with `headOnly`, one whose head has arrived. */
export function parseResponse(
  data: Buffer,
  headOnly = false,
): { status: number; headers: Record<string, string>; body: Buffer } | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  let body = data.subarray(end + 4);
  if (headOnly) return { status, headers, body };
  if (headers['transfer-encoding']?.includes('chunked')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = body.indexOf('\r\n', at);
      if (lineEnd < 0) break;
      const size = Number.parseInt(body.subarray(at, lineEnd).toString(), 16);
      if (!Number.isFinite(size) || size === 0) break;
      parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  return { status, headers, body };
}
