/**
 * The whole agent against a small real server that speaks docs/device-protocol.md: enrollment,
 * heartbeats with pending updates, artifact downloads with Range, and status reports checked with the
 * same transition rules and seq deduplication as the real server.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { TokenBucket } from '../core/token-bucket.js';
import { FINAL_STATES, isAllowed, type UpdateState } from '../core/update-state.js';
import { Agent, AgentFatalError, type AgentOptions } from './agent.js';
import { silentLogger } from './log.js';
import { seededRandom } from './schedule.js';
import type { Verdict } from './verify.js';

const keys = generateKeyPairSync('ed25519');
const otherKeys = generateKeyPairSync('ed25519');
const API = '/api/device/v1';

interface ServedUpdate {
  id: string;
  state: UpdateState;
  last_seq: number;
  action: 'install' | 'download_only' | 'switch';
  manifest: string;
  signature: string;
  sha256: string;
  artifact: Buffer;
  retry_after: number | null;
  soft?: boolean;
  download_rate_limit?: number;
  hold_reason?: string;
}

interface RecordedReport {
  update_id: string;
  seq: number;
  state: string;
  progress: number | null;
  error: string | null;
}

/** The device half of the FleetD server, in memory. */
class ProtocolServer {
  readonly enrollToken = 'fld_enroll_test';
  readonly credentials = new Map<string, string>();
  readonly updates: ServedUpdate[] = [];
  /** Reports the server accepted, in arrival order. */
  readonly accepted: RecordedReport[] = [];
  readonly heartbeats: Record<string, unknown>[] = [];
  refusedTransitions = 0;
  duplicates = 0;
  artifactBytesSent = 0;
  readonly artifactRanges: (string | undefined)[] = [];
  enrollments = 0;
  reportsDown = false;
  /** Process the next report but cut the connection before answering (the answer is lost). */
  loseNextAnswer = false;
  /** Cut the next artifact transfer after this many bytes. */
  cutArtifactAfter: number | undefined;
  /** The operator cancels when this report arrives. */
  cancelWhen: ((r: RecordedReport) => boolean) | undefined;
  private cancelled = false;
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => json(res, 500, { error: { code: 'INTERNAL', message: String(e) } }));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  offer(update: Omit<ServedUpdate, 'state' | 'last_seq' | 'retry_after' | 'action'> & Partial<ServedUpdate>) {
    const served: ServedUpdate = {
      state: 'pending',
      last_seq: 0,
      action: 'install',
      retry_after: null,
      ...update,
    };
    this.updates.push(served);
    return served;
  }

  reportsFor(id: string) {
    return this.accepted.filter((r) => r.update_id === id);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '';
    if (req.method === 'POST' && url === `${API}/enroll`) {
      const body = await readBody(req);
      if (body.enrollment_token !== this.enrollToken) return json(res, 401, err('ENROLLMENT_INVALID'));
      const id = String(body.device_id);
      if (this.credentials.has(id)) return json(res, 409, err('DEVICE_EXISTS'));
      const credential = `${id}.fld_device_${Math.random().toString(36).slice(2)}`;
      this.credentials.set(id, credential);
      this.enrollments += 1;
      return json(res, 201, { device_id: id, credential });
    }
    const device = [...this.credentials].find(([, c]) => req.headers.authorization === `Bearer ${c}`)?.[0];
    if (!device) return json(res, 401, err('UNAUTHENTICATED'));

    if (req.method === 'POST' && url === `${API}/heartbeat`) {
      const body = await readBody(req);
      if (body.device_id !== device) return json(res, 403, err('FORBIDDEN'));
      this.heartbeats.push(body);
      const pending = this.updates
        .filter((u) => !FINAL_STATES.has(u.state))
        .map((u) => ({
          id: u.id,
          rollout_id: 'ro_1',
          state: u.state,
          last_seq: u.last_seq,
          action: u.action,
          manifest: u.manifest,
          signature: u.signature,
          download_url: `${API}/artifacts/${u.sha256}`,
          retry_after: u.retry_after,
          soft: u.soft ?? false,
          ...(u.download_rate_limit ? { download_rate_limit: u.download_rate_limit } : {}),
          ...(u.hold_reason ? { hold_reason: u.hold_reason } : {}),
        }));
      return json(res, 200, { pending_updates: pending, next_heartbeat: 60 });
    }

    const artifact = /^\/api\/device\/v1\/artifacts\/([0-9a-f]{64})$/.exec(url);
    if (req.method === 'GET' && artifact) {
      const u = this.updates.find((x) => x.sha256 === artifact[1]);
      if (!u) return json(res, 403, err('FORBIDDEN'));
      return this.serveArtifact(req, res, u.artifact, u.sha256);
    }

    const status = /^\/api\/device\/v1\/updates\/([^/]+)\/status$/.exec(url);
    if (req.method === 'POST' && status) {
      if (this.reportsDown) return json(res, 503, err('UNAVAILABLE'));
      const u = this.updates.find((x) => x.id === decodeURIComponent(status[1]!));
      if (!u) return json(res, 404, err('NOT_FOUND'));
      const body = await readBody(req);
      const report = { update_id: u.id, ...body } as RecordedReport;
      let answer: { accepted: boolean; state: string };
      if (report.seq <= u.last_seq) {
        this.duplicates += 1;
        answer = { accepted: false, state: u.state };
      } else if (u.state === 'cancelled') {
        answer = { accepted: false, state: 'cancelled' };
      } else if (!isAllowed(u.state, report.state as UpdateState)) {
        this.refusedTransitions += 1;
        return json(res, 409, err('TRANSITION_NOT_ALLOWED'));
      } else {
        u.state = report.state as UpdateState;
        u.last_seq = report.seq;
        this.accepted.push(report);
        if (this.cancelWhen?.(report)) {
          u.state = 'cancelled';
          this.cancelled = true;
        }
        answer = { accepted: true, state: u.state };
      }
      if (this.loseNextAnswer) {
        this.loseNextAnswer = false;
        res.socket?.destroy();
        return;
      }
      return json(res, 200, answer);
    }
    json(res, 404, err('NOT_FOUND'));
  }

  private serveArtifact(req: IncomingMessage, res: ServerResponse, body: Buffer, sha: string) {
    const etag = `"${sha}"`;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    this.artifactRanges.push(req.headers.range);
    let start = 0;
    if (range && (req.headers['if-range'] === undefined || req.headers['if-range'] === etag)) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
    }
    res.writeHead(start > 0 ? 206 : 200, {
      etag,
      'accept-ranges': 'bytes',
      'content-length': body.length - start,
      ...(start > 0 ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    const cut = this.cutArtifactAfter;
    this.cutArtifactAfter = undefined;
    const end = cut === undefined ? body.length : Math.min(body.length, start + cut);
    // chunk by chunk, yielding in between, so the device sees the transfer progress as a network would show it
    let at = start;
    const pump = () => {
      if (res.destroyed) return;
      if (at >= end) {
        if (cut === undefined) res.end();
        else res.socket?.destroy();
        return;
      }
      const chunk = body.subarray(at, Math.min(end, at + 16_384));
      at += chunk.length;
      this.artifactBytesSent += chunk.length;
      // Once the operator has cancelled, the rest comes slowly: the test then sees the device walk away from
      // the transfer, however busy the machine, instead of a race with the socket's buffers.
      res.write(chunk, () => setTimeout(pump, this.cancelled ? 50 : 1));
    };
    pump();
  }
}

const err = (code: string) => ({ error: { code, message: code.toLowerCase() } });

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text) as Record<string, unknown>;
}

/** A signed release; `fields` override the manifest, `serve` replaces the bytes actually served. */
function release(
  id: string,
  fields: Record<string, unknown> = {},
  opts: { serve?: Buffer; signer?: KeyObject; size?: number } = {},
) {
  const version = String(fields.version ?? '2.3.0');
  const artifact = Buffer.alloc(opts.size ?? 200_000, `firmware ${version} `);
  const sha256 = createHash('sha256').update(artifact).digest('hex');
  const manifest = JSON.stringify({
    name: 'pos-firmware',
    version,
    type: 'firmware',
    hardware: ['pos-x200'],
    size: artifact.length,
    sha256,
    created: '2024-10-20T14:00:00Z',
    allow_downgrade: false,
    ...fields,
  });
  const signature = sign(null, Buffer.from(manifest, 'utf8'), opts.signer ?? keys.privateKey).toString(
    'base64',
  );
  return { id, manifest, signature, sha256, artifact: opts.serve ?? artifact };
}

const servers: ProtocolServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

/** Options over the test agent's; `enrollToken: undefined` makes an agent that has no enrollment token. */
type AgentOverrides = Omit<Partial<AgentOptions>, 'enrollToken'> & { enrollToken?: string | undefined };

async function setup(options: AgentOverrides = {}) {
  const server = await new ProtocolServer().start();
  servers.push(server);
  const stateDir = await mkdtemp(join(tmpdir(), 'fleetd-agent-'));
  const make = (more: AgentOverrides = {}) => {
    const { enrollToken, ...rest } = { enrollToken: server.enrollToken, ...options, ...more };
    return new Agent({
      server: server.url,
      deviceId: 'pos-nyc-001',
      hardwareType: 'pos-x200',
      stateDir,
      publicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      firmwareVersion: '2.1.0',
      random: seededRandom(7),
      log: silentLogger,
      ...(enrollToken === undefined ? {} : { enrollToken }),
      ...rest,
    });
  };
  return { server, stateDir, agent: make(), restart: make };
}

const states = (reports: RecordedReport[]) => reports.map((r) => r.state).filter((s, i, a) => s !== a[i - 1]);
const current = (stateDir: string) => readlink(join(stateDir, 'current'));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('agent', () => {
  it('enrolls once, installs a good release, switches, commits and reports the new version', async () => {
    const { server, stateDir, agent, restart } = await setup({
      // run in the active slot: proves the check sees the new release
      health: { kind: 'command', command: 'grep -q "firmware 2.3.0" payload' },
      healthDeadlineMs: 2000,
    });
    const u = server.offer(release('upd_1'));
    const wait = await agent.runOnce();

    const reports = server.reportsFor(u.id);
    expect(states(reports)).toEqual(['notified', 'downloading', 'installing', 'verifying', 'succeeded']);
    expect(reports.map((r) => r.seq)).toEqual(reports.map((_, i) => i + 1));
    const progress = reports.filter((r) => r.state === 'downloading').map((r) => r.progress ?? -1);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(100);
    // every ~10 %: at least one report per tenth crossed, never two in the same tenth
    const tenths = progress.map((p) => Math.floor(p / 10));
    expect(tenths).toEqual([...new Set(tenths)].sort((a, b) => a - b));
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(u.state).toBe('succeeded');
    expect(await current(stateDir)).toBe('slots/b');
    expect(await exists(join(stateDir, 'trial.json'))).toBe(false);
    expect(await exists(join(stateDir, 'job.json'))).toBe(false);
    expect((await stat(join(stateDir, 'credential'))).mode & 0o777).toBe(0o600);
    expect(wait).toBeGreaterThanOrEqual(54_000); // next_heartbeat 60 s ± 10 %
    expect(wait).toBeLessThanOrEqual(66_000);

    await restart().runOnce();
    expect(server.enrollments).toBe(1);
    expect(server.heartbeats.map((h) => h.firmware_version)).toEqual(['2.1.0', '2.3.0']);
    expect(server.accepted).toHaveLength(reports.length);
    expect(server.refusedTransitions + server.duplicates).toBe(0);
  });

  const failures: [string, ReturnType<typeof release>, Partial<AgentOptions>, string][] = [
    [
      'a tampered artifact',
      release('upd_t', {}, { serve: Buffer.alloc(200_000, 'evil') }),
      {},
      'sha256 mismatch',
    ],
    ['a bad signature', release('upd_s', {}, { signer: otherKeys.privateKey }), {}, 'signature mismatch'],
    [
      'the wrong hardware',
      release('upd_h', { hardware: ['pos-x200'] }),
      { hardwareType: 'pos-x100' },
      'hardware pos-x100 not in [pos-x200]',
    ],
    [
      'a downgrade',
      release('upd_d', { version: '2.1.0' }),
      { firmwareVersion: '2.3.0' },
      'downgrade 2.3.0 → 2.1.0 refused',
    ],
  ];
  it.each(failures)(
    'fails %s with the reason and keeps the old slot',
    async (_name, rel, options, reason) => {
      const { server, stateDir, agent } = await setup(options);
      const u = server.offer(rel);
      await agent.runOnce();
      expect(server.reportsFor(u.id).at(-1)).toMatchObject({ state: 'failed', error: reason });
      expect(u.state).toBe('failed');
      expect(await current(stateDir)).toBe('slots/a');
      expect(await readdir(join(stateDir, 'slots', 'b'))).toEqual([]); // nothing of it left
      expect(await exists(join(stateDir, 'job.json'))).toBe(false);
      await agent.runOnce(); // not picked up again
      expect(server.reportsFor(u.id).at(-1)?.state).toBe('failed');
      expect(server.refusedTransitions).toBe(0);
    },
  );

  it('installs a lower version marked allow_downgrade', async () => {
    const { server, stateDir, agent } = await setup({ firmwareVersion: '2.3.0' });
    const u = server.offer(release('upd_r', { version: '2.1.0', allow_downgrade: true }));
    await agent.runOnce();
    expect(u.state).toBe('succeeded');
    expect(await current(stateDir)).toBe('slots/b');
  });

  it('rolls back when the health check fails', async () => {
    const { server, stateDir, agent } = await setup({
      health: { kind: 'command', command: 'exit 1' },
      healthDeadlineMs: 300,
      healthIntervalMs: 100,
    });
    const u = server.offer(release('upd_1'));
    await agent.runOnce();
    expect(states(server.reportsFor(u.id))).toEqual([
      'notified',
      'downloading',
      'installing',
      'verifying',
      'rolled_back',
    ]);
    expect(server.reportsFor(u.id).at(-1)?.error).toBe('health check failed: exit 1');
    expect(await current(stateDir)).toBe('slots/a');
    expect(await exists(join(stateDir, 'trial.json'))).toBe(false);
    await agent.runOnce();
    expect(server.heartbeats.at(-1)?.firmware_version).toBe('2.1.0');
  });

  it('delivers reports made while the server was down in order once it is back, none lost or doubled', async () => {
    const clock = new ManualClock(Date.parse('2024-10-20T14:00:00Z'));
    const { server, stateDir, agent } = await setup({ clock });
    const u = server.offer(release('upd_1'));
    server.reportsDown = true;
    await agent.runOnce();
    expect(server.accepted).toEqual([]);
    expect(await current(stateDir)).toBe('slots/b'); // the device did its work all the same
    const outbox = JSON.parse(await readFile(join(stateDir, 'outbox.json'), 'utf8')) as {
      reports: unknown[];
    };
    const made = outbox.reports.length;
    expect(made).toBeGreaterThan(5);

    server.reportsDown = false;
    server.loseNextAnswer = true; // the first one gets through but its answer is lost: it will be resent
    clock.advance(10 * 60_000);
    await agent.runOnce(); // delivery stops at the lost answer…
    clock.advance(10 * 60_000);
    await agent.runOnce(); // …and resumes with a resend the server recognises
    const reports = server.reportsFor(u.id);
    expect(reports.map((r) => r.seq)).toEqual(Array.from({ length: made }, (_, i) => i + 1));
    expect(states(reports)).toEqual(['notified', 'downloading', 'installing', 'verifying', 'succeeded']);
    expect(server.duplicates).toBe(1);
    expect(u.state).toBe('succeeded');
  });

  it('resumes an interrupted download after a restart, fetching only the missing bytes', async () => {
    const { server, stateDir, agent, restart } = await setup();
    const rel = release('upd_1', {}, { size: 1_000_000 });
    const u = server.offer(rel);
    server.cutArtifactAfter = 400_000;
    await agent.runOnce(); // the transfer breaks: the job and the part file stay
    expect(u.state).toBe('downloading');
    expect(await exists(join(stateDir, 'job.json'))).toBe(true);
    const part = (await stat(join(stateDir, 'slots', 'b', '.download', 'artifact.part'))).size;
    expect(part).toBeGreaterThan(0);
    const sentBefore = server.artifactBytesSent;

    await restart().runOnce(); // a new process on the same state dir
    expect(server.artifactRanges).toEqual([undefined, `bytes=${part}-`]);
    expect(server.artifactBytesSent - sentBefore).toBe(1_000_000 - part);
    expect(u.state).toBe('succeeded');
    const reports = server.reportsFor(u.id);
    expect(reports.map((r) => r.seq)).toEqual(reports.map((_, i) => i + 1));
    expect(reports.filter((r) => r.state === 'notified')).toHaveLength(1);
    expect(server.refusedTransitions + server.duplicates).toBe(0);
    expect((await readFile(join(stateDir, 'current', 'payload'))).equals(rel.artifact)).toBe(true);
  });

  it('finishes a trial after a crash during the health check', async () => {
    const crash = async (): Promise<Verdict> => {
      throw new Error('killed');
    };
    const { server, stateDir, agent, restart } = await setup({ health: crash });
    const u = server.offer(release('upd_1'));
    await agent.runOnce(); // stands for a kill -9 while verifying
    expect(await current(stateDir)).toBe('slots/b');
    expect(await exists(join(stateDir, 'trial.json'))).toBe(true);

    await restart({ health: async () => ({ ok: true, value: undefined }) }).runOnce();
    expect(states(server.reportsFor(u.id))).toEqual([
      'notified',
      'downloading',
      'installing',
      'verifying',
      'succeeded',
    ]);
    expect(await current(stateDir)).toBe('slots/b');
    expect(await exists(join(stateDir, 'trial.json'))).toBe(false);
  });

  it('goes back on its own after restarting 3 times without committing', async () => {
    const crash = async (): Promise<Verdict> => {
      throw new Error('the new release takes the device down');
    };
    const { server, stateDir, agent, restart } = await setup({ health: crash });
    const u = server.offer(release('upd_1'));
    await agent.runOnce();
    await expect(restart().runOnce()).rejects.toThrow(/takes the device down/); // restart 1
    await expect(restart().runOnce()).rejects.toThrow(/takes the device down/); // restart 2
    expect(await current(stateDir)).toBe('slots/b');
    await restart().runOnce(); // restart 3: no more chances
    expect(server.reportsFor(u.id).at(-1)).toMatchObject({
      state: 'rolled_back',
      error: 'crash loop: agent restarted 3 times without committing',
    });
    expect(await current(stateDir)).toBe('slots/a');
    expect(await exists(join(stateDir, 'trial.json'))).toBe(false);
  });

  it('goes back at its first restart when the bootloader ran the boot counter down to 0', async () => {
    const crash = async (): Promise<Verdict> => {
      throw new Error('the new release does not boot');
    };
    const { server, stateDir, agent, restart } = await setup({ health: crash });
    const u = server.offer(release('upd_1'));
    await agent.runOnce();
    expect((await readFile(join(stateDir, 'boot-count'), 'utf8')).trim()).toBe('3');
    await writeFile(join(stateDir, 'boot-count'), '0\n'); // what a bootloader script leaves after 3 boots
    await restart().runOnce(); // restart 1 of 3: the counter decides
    expect(server.reportsFor(u.id).at(-1)).toMatchObject({
      state: 'rolled_back',
      error: 'crash loop: the boot counter ran out without a commit',
    });
    expect(await current(stateDir)).toBe('slots/a');
    expect(await exists(join(stateDir, 'boot-count'))).toBe(false);
  });

  it('rolls back a release whose supervised application crash-loops, and restarts the application on each switch', async () => {
    // the application fails while slot b (the new release) is active: `current` resolves to slots/b
    const command =
      'echo "run in $(basename "$(pwd -P)")"; [ "$(basename "$(pwd -P)")" = b ] && exit 1; exec sleep 60';
    let agent: Agent | undefined;
    // the release's own check passes, once the application restarted by the switch has crashed
    const health = async (): Promise<Verdict> => {
      // each turn of the event loop lets the child's exit through; no timer, no fixed wait
      while (agent!.apps()[0]!.state !== 'crash-loop') await new Promise((next) => setImmediate(next));
      return { ok: true, value: undefined };
    };
    const setupDone = await setup({
      apps: [{ name: 'till', command }],
      crashPolicy: { windowMs: 60_000, maxCrashes: 1, baseDelayMs: 1_000, maxDelayMs: 1_000 },
      health,
    });
    agent = setupDone.agent;
    const u = setupDone.server.offer(release('upd_1'));
    await agent.runOnce();
    expect(setupDone.server.reportsFor(u.id).at(-1)).toMatchObject({
      state: 'rolled_back',
      error: 'crash loop: till (exit 1)',
    });
    expect(await current(setupDone.stateDir)).toBe('slots/a');
    expect(agent.apps()[0]!.state).toBe('running'); // back on slot a, started again
    const log = await readFile(join(setupDone.stateDir, 'logs', 'till.log'), 'utf8');
    expect(log).toContain('run in b');
    await agent.run(AbortSignal.abort()); // stops the applications
    expect(agent.apps()[0]!.state).toBe('stopped');
  });

  it('stages a download_only release, then switches to it without downloading again', async () => {
    const { server, stateDir, agent } = await setup();
    const rel = release('upd_1');
    const u = server.offer({ ...rel, action: 'download_only' });
    await agent.runOnce();
    // Staging is the whole job of a download_only update: it ends succeeded, still on the old slot.
    expect(states(server.reportsFor(u.id))).toEqual(['notified', 'downloading', 'succeeded']);
    expect(await current(stateDir)).toBe('slots/a');
    expect(await exists(join(stateDir, 'slots', 'b', '.download', 'staged.json'))).toBe(true);
    await agent.runOnce(); // nothing more to do or say
    expect(server.reportsFor(u.id)).toHaveLength(server.reportsFor(u.id).length);

    const s = server.offer({ ...rel, id: 'upd_2', action: 'switch' });
    await agent.runOnce();
    expect(states(server.reportsFor(s.id))).toEqual(['notified', 'installing', 'verifying', 'succeeded']);
    expect(server.artifactBytesSent).toBe(rel.artifact.length);
    expect(await current(stateDir)).toBe('slots/b');
  });

  it('goes back to the release its other slot still holds without a download, although it is older', async () => {
    const { server, stateDir, agent } = await setup();
    const old = release('upd_1', { version: '2.2.0' });
    server.offer(old);
    await agent.runOnce();
    server.offer(release('upd_2', { version: '2.3.0' }));
    await agent.runOnce();
    expect(await current(stateDir)).toBe('slots/a');
    const sent = server.artifactBytesSent;
    // The rollback: the previous release again, not marked allow_downgrade.
    const back = server.offer({ ...old, id: 'upd_3' });
    await agent.runOnce();
    expect(back.state).toBe('succeeded');
    expect(server.artifactBytesSent).toBe(sent);
    expect(await current(stateDir)).toBe('slots/b');
    await agent.runOnce();
    expect(server.heartbeats.at(-1)?.firmware_version).toBe('2.2.0');
  });

  it('still refuses an older release it does not hold in its other slot', async () => {
    const { server, agent } = await setup({ firmwareVersion: '2.3.0' });
    const u = server.offer(release('upd_1', { version: '2.2.0' }));
    await agent.runOnce();
    expect(server.reportsFor(u.id).at(-1)).toMatchObject({
      state: 'failed',
      error: 'downgrade 2.3.0 → 2.2.0 refused',
    });
  });

  it('defers a soft update while its consent hook says no, keeping the download', async () => {
    let consent = false;
    const { server, stateDir, agent } = await setup({ consent: async () => consent });
    const rel = release('upd_1');
    const u = server.offer({ ...rel, soft: true });
    const wait = await agent.runOnce();
    expect(states(server.reportsFor(u.id))).toEqual(['notified', 'downloading']);
    expect(wait).toBeLessThanOrEqual(300_000); // asks the hook again in 5 minutes at the latest
    expect(await current(stateDir)).toBe('slots/a');
    consent = true;
    await agent.runOnce();
    expect(u.state).toBe('succeeded');
    expect(server.artifactBytesSent).toBe(rel.artifact.length); // downloaded once
  });

  it('fails a switch to a release that is not staged', async () => {
    const { server, stateDir, agent } = await setup();
    const u = server.offer({ ...release('upd_1'), action: 'switch' });
    await agent.runOnce();
    expect(server.reportsFor(u.id).at(-1)).toMatchObject({
      state: 'failed',
      error: 'release 2.3.0 is not staged',
    });
    expect(server.artifactBytesSent).toBe(0);
    expect(await current(stateDir)).toBe('slots/a');
  });

  it('stops working on an update the operator cancelled', async () => {
    const { server, stateDir, agent } = await setup();
    const u = server.offer(release('upd_1', {}, { size: 1_000_000 }));
    server.cancelWhen = (r) => r.state === 'downloading' && (r.progress ?? 0) >= 30;
    await agent.runOnce();
    expect(u.state).toBe('cancelled');
    expect(server.reportsFor(u.id).at(-1)?.progress).toBeGreaterThanOrEqual(30);
    expect(server.reportsFor(u.id).at(-1)?.state).toBe('downloading'); // nothing after the cancel
    expect(server.artifactBytesSent).toBeLessThan(1_000_000); // the transfer was abandoned
    expect(await current(stateDir)).toBe('slots/a');
    expect(await readdir(join(stateDir, 'slots', 'b'))).toEqual([]);
    expect(await exists(join(stateDir, 'job.json'))).toBe(false);
    const before = server.accepted.length;
    await agent.runOnce();
    expect(server.accepted.length).toBe(before);
  });

  it('waits while the server holds the download back (retry_after), claiming nothing', async () => {
    const { server, agent } = await setup();
    const u = server.offer({ ...release('upd_1'), retry_after: 30 });
    const wait = await agent.runOnce();
    expect(server.artifactBytesSent).toBe(0);
    expect(server.reportsFor(u.id)).toEqual([]); // no `notified`: the slot is the server's to give
    expect(wait).toBe(30_000);
    u.retry_after = null;
    await agent.runOnce();
    expect(u.state).toBe('succeeded');
  });

  it('downloads no faster than the download_rate_limit of its offer (virtual time), and waits out a metered hold', async () => {
    const time = {
      at: 0,
      now: () => time.at,
      wait: async (ms: number) => {
        time.at += ms;
      },
    };
    const { server, agent } = await setup({ downloadPacing: time });
    const u = server.offer({
      ...release('upd_1', {}, { size: 300_000 }),
      retry_after: 900,
      hold_reason:
        'metered connection: the release is 300kB and the rollout allows no download on a metered link',
    });
    await agent.runOnce();
    expect(server.artifactBytesSent).toBe(0);
    expect(server.reportsFor(u.id)).toEqual([]);
    u.retry_after = null;
    delete u.hold_reason;
    u.download_rate_limit = 100_000;
    await agent.runOnce();
    expect(u.state).toBe('succeeded');
    expect(server.artifactBytesSent).toBe(300_000);
    // 300 kB at 100 kB/s from a full bucket (25 kB), read 25 kB at most at a time: at least 2.5 s.
    expect(time.at).toBeGreaterThanOrEqual(TokenBucket.minimumMs(300_000, 100_000, 25_000, 25_000));
  });

  it('does not repeat a state the server already set', async () => {
    const { server, agent } = await setup();
    const u = server.offer({ ...release('upd_1'), state: 'notified' }); // a server that marks delivery itself
    await agent.runOnce();
    expect(states(server.reportsFor(u.id))).toEqual(['downloading', 'installing', 'verifying', 'succeeded']);
    expect(server.refusedTransitions).toBe(0);
  });

  it('stops with a clear error when it cannot get a credential', async () => {
    const { server, restart } = await setup();
    server.credentials.set('pos-nyc-001', 'pos-nyc-001.fld_device_other');
    const error = await restart()
      .runOnce()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AgentFatalError);
    expect((error as Error).message).toMatch(/DEVICE_EXISTS.*fleetd devices credential pos-nyc-001/);
    await expect(restart({ enrollToken: undefined }).runOnce()).rejects.toThrow(/no enrollment token/);
  });

  it('refuses a state dir that belongs to another device', async () => {
    const { agent, restart } = await setup();
    await agent.runOnce();
    await expect(restart({ deviceId: 'someone-else' }).runOnce()).rejects.toThrow(
      /belongs to device pos-nyc-001/,
    );
  });

  it('runs on its own timer until stopped, sleeping as long as runOnce says', async () => {
    const stop = new AbortController();
    const waits: number[] = [];
    const { server, agent } = await setup({
      sleep: async (ms) => {
        waits.push(ms);
        if (waits.length === 2) stop.abort();
      },
    });
    await agent.run(stop.signal);
    expect(server.heartbeats).toHaveLength(2);
    expect(waits).toHaveLength(2);
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(54_000);
      expect(w).toBeLessThanOrEqual(66_000);
    }
  });

  it('once its credential is refused (decommissioned) says so once and backs off to an hour, sending nothing else', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const lines: string[] = [];
    const log = {
      info: (m: string) => lines.push(`info ${m}`),
      warn: (m: string) => lines.push(`warn ${m}`),
    };
    const { server, stateDir, agent } = await setup({ clock, log });
    // Reports waiting in the outbox, as a device in the middle of an update has.
    server.reportsDown = true;
    server.offer(release('upd_1'));
    await agent.runOnce();
    const reportsBefore = server.accepted.length;
    server.reportsDown = false;
    server.credentials.delete('pos-nyc-001'); // decommissioned: the server answers 401 from now on

    const waits: number[] = [];
    for (let i = 0; i < 16; i++) {
      const wait = await agent.runOnce();
      waits.push(wait);
      clock.advance(wait);
    }
    expect(waits.slice(1).every((w, i) => w >= waits[i]! * 0.8)).toBe(true);
    expect(waits.at(-1)).toBeGreaterThanOrEqual(0.9 * 3_600_000);
    expect(Math.max(...waits)).toBeLessThanOrEqual(1.1 * 3_600_000);
    // 16 steps spread over more than 4 hours, none of them sending a report.
    expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThan(4 * 3_600_000);
    expect(server.accepted.length).toBe(reportsBefore);
    const said = lines.filter((l) => /decommissioned/.test(l));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(
      /^warn the server refuses this device's credential \(HTTP 401 UNAUTHENTICATED\): this device was decommissioned or its credential was revoked\..*at most once an hour.*fleetd devices credential pos-nyc-001/,
    );

    // An operator issues a new credential and it is written to the state dir: the agent carries on.
    const fresh = 'pos-nyc-001.fld_device_fresh';
    server.credentials.set('pos-nyc-001', fresh);
    await writeFile(join(stateDir, 'credential'), `${fresh}\n`);
    const wait = await agent.runOnce();
    expect(wait).toBeLessThanOrEqual(66_000);
    expect(lines.at(-1)).toBe('info the server accepts this device again');
  });

  it('stops running at an error only an operator can fix', async () => {
    const { agent } = await setup({ enrollToken: undefined, sleep: async () => {} });
    await expect(agent.run(new AbortController().signal)).rejects.toBeInstanceOf(AgentFatalError);
  });
});
