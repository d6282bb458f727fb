/**
 * A simulated device that speaks the real device protocol (docs/device-protocol.md): it heartbeats, takes
 * the updates the server grants it, and reports each step with increasing sequence numbers. How an update
 * ends on it (success, failure, health-check rollback) is decided by a function the scenario gives. It
 * works over any transport: the Fastify app in-process (virtual time) or HTTP to a live server.
 */
import type {
  HeartbeatJson,
  HeartbeatReplyJson,
  PendingUpdateJson,
  StatusReportJson,
} from '../protocol/device-api.js';

export interface DeviceTransport {
  post(path: string, body: unknown, credential: string): Promise<{ status: number; body: unknown }>;
}

export type { PendingUpdateJson };

export type Outcome =
  | { kind: 'succeed' }
  | { kind: 'fail'; error: string }
  | { kind: 'roll_back'; error: string };

export interface DeviceBehaviour {
  /** How this device's update of `version` ends. */
  outcome(update: { version: string; action: string }): Outcome;
}

export interface StepReport {
  updateId: string;
  rolloutId: string | null;
  version: string;
  action: string;
  state: string;
  error?: string;
}

const manifestVersion = (manifest: string) => (JSON.parse(manifest) as { version: string }).version;

export class ProtocolDevice {
  private readonly seqs = new Map<string, number>();
  /** A release staged by download_only and not switched to yet. */
  staged: string | null = null;
  previous: string | null = null;
  /** Reboots and app crashes since the running release was installed, sent with each heartbeat once set. */
  health: NonNullable<HeartbeatJson['health']> | null = null;

  constructor(
    readonly id: string,
    private readonly credential: string,
    /** Replaced when the server it talks to restarts. */
    public transport: DeviceTransport,
    public firmware: string | null,
    private readonly behaviour: DeviceBehaviour,
  ) {}

  /** One heartbeat; answers the updates the server lists for this device. */
  async heartbeat(): Promise<PendingUpdateJson[]> {
    const body: HeartbeatJson = {
      device_id: this.id,
      ...(this.firmware !== null ? { firmware_version: this.firmware } : {}),
      ...(this.health !== null ? { health: this.health } : {}),
    };
    const r = await this.transport.post('/api/device/v1/heartbeat', body, this.credential);
    if (r.status !== 200)
      throw new Error(`${this.id}: heartbeat answered ${r.status} ${JSON.stringify(r.body)}`);
    return (r.body as HeartbeatReplyJson).pending_updates;
  }

  /**
   * Heartbeats, then carries every update the server granted (state notified, no retry_after) to its end,
   * as a device whose update is quick would. Returns the final reports made.
   */
  async connect(): Promise<StepReport[]> {
    const done: StepReport[] = [];
    for (const u of await this.heartbeat()) {
      if (u.retry_after !== null || u.state !== 'notified') continue;
      done.push(await this.carryOut(u));
    }
    return done;
  }

  private async report(
    u: PendingUpdateJson,
    state: StatusReportJson['state'],
    extra: Pick<StatusReportJson, 'progress' | 'error'> = {},
  ): Promise<void> {
    const seq = Math.max(this.seqs.get(u.id) ?? 0, u.last_seq) + 1;
    this.seqs.set(u.id, seq);
    const body: StatusReportJson = { seq, state, ...extra };
    const r = await this.transport.post(`/api/device/v1/updates/${u.id}/status`, body, this.credential);
    if (r.status !== 200)
      throw new Error(`${this.id}: report ${state} answered ${r.status} ${JSON.stringify(r.body)}`);
  }

  private async carryOut(u: PendingUpdateJson): Promise<StepReport> {
    const version = manifestVersion(u.manifest);
    const base = { updateId: u.id, rolloutId: u.rollout_id, version, action: u.action };
    if (u.action === 'switch' || (version === this.previous && u.action === 'install')) {
      // A blue-green switch to the staged slot, or back to the release the other slot still holds (a
      // rollback), as the agent does: nothing to download, nothing that can fail to install.
      await this.report(u, 'installing');
      await this.report(u, 'verifying');
      await this.report(u, 'succeeded');
      this.previous = this.firmware;
      this.firmware = version;
      this.staged = null;
      return { ...base, state: 'succeeded' };
    }
    await this.report(u, 'downloading', { progress: 100 });
    const outcome = this.behaviour.outcome({ version, action: u.action });
    if (outcome.kind === 'fail') {
      await this.report(u, 'failed', { error: outcome.error });
      return { ...base, state: 'failed', error: outcome.error };
    }
    if (u.action === 'download_only') {
      this.staged = version;
      await this.report(u, 'succeeded');
      return { ...base, state: 'succeeded' };
    }
    await this.report(u, 'installing');
    await this.report(u, 'verifying');
    if (outcome.kind === 'roll_back') {
      await this.report(u, 'rolled_back', { error: outcome.error });
      return { ...base, state: 'rolled_back', error: outcome.error };
    }
    await this.report(u, 'succeeded');
    this.previous = this.firmware;
    this.firmware = version;
    return { ...base, state: 'succeeded' };
  }
}

/** The Fastify app in-process: the real routes, schemas and store, no sockets. */
export function injectTransport(app: {
  inject(opts: {
    method: 'POST';
    url: string;
    payload: unknown;
    headers: Record<string, string>;
  }): Promise<{ statusCode: number; json(): unknown }>;
}): DeviceTransport {
  return {
    async post(path, body, credential) {
      const r = await app.inject({
        method: 'POST',
        url: path,
        payload: body,
        headers: { authorization: `Bearer ${credential}` },
      });
      return { status: r.statusCode, body: r.json() };
    },
  };
}

/** A live server over HTTP (fetch): the same protocol a device on the network speaks. */
export function httpTransport(baseUrl: string): DeviceTransport {
  return {
    async post(path, body, credential) {
      const r = await fetch(`${baseUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: await r.json() };
    },
  };
}
