/** The device protocol's HTTP calls (docs/device-protocol.md), and nothing else: no decisions here. */
import type { CommandResultJson, DeviceCommandJson } from '../protocol/commands.js';
import type { ConfigStatusJson, DeviceConfigOfferJson } from '../protocol/config.js';

import type { DeltaOfferJson } from '../protocol/deltas.js';
import type { EnrollJson, HeartbeatJson, PendingUpdateJson } from '../protocol/device-api.js';
import type { TelemetryJson } from '../protocol/telemetry.js';
import type { HttpFetch } from './downloader.js';
import type { Report, SendOutcome } from './outbox.js';
import { certificateRefused } from './tls-fetch.js';

const API = '/api/device/v1';

/** An update the server offers (the protocol's schema); `soft`: the device may defer installing it. */
export type PendingUpdate = PendingUpdateJson;

export interface HeartbeatAnswer {
  pending: PendingUpdate[];
  nextHeartbeatSec: number;
  /** Remote commands handed to this device (docs/remote-commands.md). */
  commands: DeviceCommandJson[];
  /** The desired configuration (docs/configuration.md), with its document while the device has not reported on it. */
  config?: DeviceConfigOfferJson;
}

export type EnrollBody = EnrollJson;

/** A certificate the server issued for the device's CSR, with the CA that signed it. */
export interface IssuedCertificate {
  certificate: string;
  ca_certificate: string | undefined;
  expires_at: string | undefined;
}
export type HeartbeatBody = HeartbeatJson;

/** An HTTP answer other than the expected one, with the server's `{error: {code, message}}` when present. */
export class ProtocolError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export class DeviceClient {
  /** The bearer credential; undefined for a device that authenticates with its TLS client certificate. */
  credential: string | undefined;

  constructor(
    private readonly server: string,
    /** How the server is reached (mutual TLS once the device has a certificate): downloads use it too. */
    readonly fetchFn: HttpFetch,
    private readonly timeoutMs = 30_000,
  ) {}

  /** `download_url` is relative to the server (which may itself sit under a path prefix). */
  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.server.replace(/\/+$/, '')}${path}`;
  }

  authHeaders(): Record<string, string> {
    return this.credential ? { authorization: `Bearer ${this.credential}` } : {};
  }

  /** The credential goes to the device's own server only: a signed link on a cache's origin needs none. */
  authHeadersFor(url: string): Record<string, string> {
    return new URL(url).origin === new URL(this.url('/')).origin ? this.authHeaders() : {};
  }

  async enroll(body: EnrollBody): Promise<string> {
    const res = await this.post('/enroll', body, false);
    if (res.status !== 201) throw await protocolError(res, 'enroll');
    const answer = (await res.json()) as { credential?: unknown };
    if (typeof answer.credential !== 'string')
      throw new ProtocolError(res.status, undefined, 'enroll: no credential');
    return answer.credential;
  }

  /**
   * Enrollment through the approval queue (no token; the request secret proves the same device each time): the
   * credential once an operator accepted the device, or how many seconds to wait before asking again (202).
   */
  async askToJoin(body: EnrollBody): Promise<{ credential: string } | { waitSec: number }> {
    const res = await this.post('/enroll', body, false);
    if (res.status === 202) {
      const answer = (await res.json()) as { retry_after?: unknown };
      const wait = typeof answer.retry_after === 'number' && answer.retry_after > 0 ? answer.retry_after : 60;
      return { waitSec: wait };
    }
    if (res.status !== 201) throw await protocolError(res, 'enroll');
    const answer = (await res.json()) as { credential?: unknown };
    if (typeof answer.credential !== 'string')
      throw new ProtocolError(res.status, undefined, 'enroll: no credential');
    return { credential: answer.credential };
  }

  /** Enrollment with a CSR (subject CN = the device id): the answer is a certificate, not a credential. */
  async enrollWithCsr(body: EnrollBody, csr: string): Promise<IssuedCertificate> {
    const res = await this.post('/enroll', { ...body, csr }, false);
    if (res.status !== 201) throw await protocolError(res, 'enroll');
    return issuedCertificate(res, 'enroll');
  }

  /** A new certificate for a new key, asked for over mutual TLS with the current certificate. */
  async renewCertificate(csr: string): Promise<IssuedCertificate> {
    const res = await this.post('/certificate', { csr });
    if (res.status !== 200) throw await protocolError(res, 'certificate renewal');
    return issuedCertificate(res, 'certificate renewal');
  }

  async heartbeat(body: HeartbeatBody): Promise<HeartbeatAnswer> {
    const res = await this.post('/heartbeat', body, true);
    if (res.status !== 200) throw await protocolError(res, 'heartbeat');
    const answer = (await res.json()) as {
      pending_updates?: unknown;
      next_heartbeat?: unknown;
      commands?: unknown;
      config?: unknown;
    };
    const list = Array.isArray(answer.pending_updates) ? answer.pending_updates : [];
    const next =
      typeof answer.next_heartbeat === 'number' && answer.next_heartbeat > 0 ? answer.next_heartbeat : 300;
    return {
      pending: list.map(parsePendingUpdate).filter((u) => u !== undefined),
      nextHeartbeatSec: next,
      commands: parseCommands(answer.commands),
      ...configOffer(answer.config),
    };
  }

  /** Posts what applying a configuration came to; throws when the server did not take it (retried later). */
  async configStatus(status: ConfigStatusJson): Promise<void> {
    const res = await this.post('/config/status', status);
    if (res.status !== 200) throw await protocolError(res, 'configuration status');
  }

  /** Posts a remote command's result; throws when the server did not take it (the caller retries later). */
  async commandResult(id: string, result: CommandResultJson): Promise<void> {
    const res = await this.post(`/commands/${encodeURIComponent(id)}/result`, result);
    if (res.status !== 200) throw await protocolError(res, 'command result');
  }

  /**
   * Posts a telemetry report; answers how many seconds until the next one is welcome (the server's Retry-After
   * when it was too soon). Throws on anything else: the next report is simply the next sample.
   */
  async telemetry(body: TelemetryJson): Promise<{ accepted: boolean; waitSec: number }> {
    const res = await this.post('/telemetry', body);
    if (res.status === 429) {
      await res.body?.cancel();
      return { accepted: false, waitSec: Number(res.headers.get('retry-after')) || 60 };
    }
    if (res.status !== 200) throw await protocolError(res, 'telemetry');
    const answer = (await res.json().catch(() => ({}))) as { retry_after?: unknown };
    return { accepted: true, waitSec: typeof answer.retry_after === 'number' ? answer.retry_after : 60 };
  }

  /** Never throws: the outbox decides from the outcome whether to move on or retry later. */
  async report(r: Report): Promise<SendOutcome> {
    let res: Response;
    try {
      res = await this.post(`/updates/${encodeURIComponent(r.update_id)}/status`, {
        seq: r.seq,
        state: r.state,
        progress: r.progress,
        error: r.error,
      });
    } catch (e) {
      return { kind: 'retry', reason: (e as Error).message };
    }
    if (res.status === 200) {
      const answer = (await res.json().catch(() => ({}))) as { accepted?: unknown; state?: unknown };
      return { kind: 'answered', accepted: answer.accepted === true, state: String(answer.state ?? '') };
    }
    const error = await protocolError(res, 'status report');
    // These can never succeed however often they are sent; anything else may (server down, auth fixed…).
    if ([400, 404, 409, 422].includes(res.status)) return { kind: 'refused', reason: error.message };
    return { kind: 'retry', reason: error.message };
  }

  /**
   * The TUF root signed for migration (docs/signing.md, "Moving a fleet to TUF"), as the server holds it: the
   * caller believes none of it before checking the signature with the pinned key.
   */
  async tufMigration(): Promise<{ root: string; signature: string }> {
    const res = await this.fetchFn(this.url(`${API}/tuf/migration`), {
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (res.status !== 200) throw await protocolError(res, 'TUF migration root');
    const answer = (await res.json()) as Record<string, unknown>;
    if (typeof answer.root !== 'string' || typeof answer.signature !== 'string')
      throw new ProtocolError(
        res.status,
        undefined,
        'TUF migration root: no root and signature in the answer',
      );
    return { root: answer.root, signature: answer.signature };
  }

  /**
   * Asks the server to put an offered soft update off (docs/rollouts.md, "Deferrals"): the deferral made, or
   * `spent` when the server refuses (409: the budget is spent or the update cannot be deferred; install it).
   */
  async defer(
    updateId: string,
    forText: string | undefined,
  ): Promise<{ kind: 'deferred'; count: number; until: number } | { kind: 'spent'; reason: string }> {
    const res = await this.post(
      `/updates/${encodeURIComponent(updateId)}/defer`,
      forText === undefined ? {} : { for: forText },
    );
    if (res.status === 409) return { kind: 'spent', reason: (await protocolError(res, 'defer')).message };
    if (res.status !== 200) throw await protocolError(res, 'defer');
    const answer = (await res.json()) as { count: number; deferred_until: string };
    return { kind: 'deferred', count: answer.count, until: Date.parse(answer.deferred_until) };
  }

  private async post(path: string, body: unknown, auth = true): Promise<Response> {
    try {
      return await this.fetchFn(this.url(`${API}${path}`), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? this.authHeaders() : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      // The TLS handshake refused our certificate: as final as an HTTP 401.
      const alert = certificateRefused(e);
      if (alert)
        throw new ProtocolError(
          401,
          'CERTIFICATE_REFUSED',
          `the server refused this device's certificate (${alert})`,
        );
      throw e;
    }
  }
}

async function issuedCertificate(res: Response, what: string): Promise<IssuedCertificate> {
  const answer = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (typeof answer.certificate !== 'string')
    throw new ProtocolError(res.status, undefined, `${what}: no certificate in the answer`);
  return {
    certificate: answer.certificate,
    ca_certificate: typeof answer.ca_certificate === 'string' ? answer.ca_certificate : undefined,
    expires_at: typeof answer.expires_at === 'string' ? answer.expires_at : undefined,
  };
}

async function protocolError(res: Response, what: string): Promise<ProtocolError> {
  const body = (await res.json().catch(() => undefined)) as
    | { error?: { code?: string; message?: string } }
    | undefined;
  const code = body?.error?.code;
  const message = body?.error?.message ?? res.statusText;
  return new ProtocolError(
    res.status,
    code,
    `${what}: HTTP ${res.status}${code ? ` ${code}` : ''}: ${message}`,
  );
}

/** The answer's configuration when well formed; anything else is left out. */
function configOffer(raw: unknown): { config?: DeviceConfigOfferJson } {
  if (typeof raw !== 'object' || raw === null) return {};
  const c = raw as Record<string, unknown>;
  if (typeof c.version !== 'string' || typeof c.hash !== 'string') return {};
  const document = c.document;
  const isObject = typeof document === 'object' && document !== null && !Array.isArray(document);
  return {
    config: {
      version: c.version,
      hash: c.hash,
      ...(isObject ? { document: document as Record<string, unknown> } : {}),
    },
  };
}

const COMMAND_KINDS: ReadonlySet<unknown> = new Set(['reboot', 'restart-app', 'collect-logs', 'run']);

/** The well-formed commands of a heartbeat answer; anything else is skipped. */
export function parseCommands(raw: unknown): DeviceCommandJson[] {
  if (!Array.isArray(raw)) return [];
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return raw.flatMap((c: Record<string, unknown>) => {
    if (typeof c !== 'object' || c === null || typeof c.id !== 'string' || !COMMAND_KINDS.has(c.kind))
      return [];
    const app = str(c.app);
    const script = str(c.script);
    const signature = str(c.signature);
    return [
      {
        id: c.id,
        kind: c.kind as DeviceCommandJson['kind'],
        expires_at: str(c.expires_at) ?? '',
        ...(app !== undefined ? { app } : {}),
        ...(typeof c.since === 'number' ? { since: c.since } : {}),
        ...(script !== undefined ? { script } : {}),
        ...(signature !== undefined ? { signature } : {}),
      },
    ];
  });
}

/** A malformed entry is skipped rather than trusted: the manifest's signature is what is checked later. */
export function parsePendingUpdate(raw: unknown): PendingUpdate | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const u = raw as Record<string, unknown>;
  if (typeof u.id !== 'string' || typeof u.manifest !== 'string' || typeof u.signature !== 'string')
    return undefined;
  const action = u.action === 'download_only' || u.action === 'switch' ? u.action : 'install';
  return {
    id: u.id,
    rollout_id: typeof u.rollout_id === 'string' ? u.rollout_id : null,
    state: typeof u.state === 'string' ? u.state : 'pending',
    last_seq: typeof u.last_seq === 'number' ? u.last_seq : 0,
    action,
    manifest: u.manifest,
    signature: u.signature,
    download_url: typeof u.download_url === 'string' ? u.download_url : '',
    retry_after: typeof u.retry_after === 'number' ? u.retry_after : null,
    soft: u.soft === true,
    ...(isDeltaOffer(u.delta) ? { delta: u.delta } : {}),
    ...(typeof u.hold_reason === 'string' ? { hold_reason: u.hold_reason.slice(0, 256) } : {}),
    // A limit that is not a positive whole number of bytes per second is no limit the agent can keep.
    ...(Number.isSafeInteger(u.download_rate_limit) && (u.download_rate_limit as number) > 0
      ? { download_rate_limit: u.download_rate_limit as number }
      : {}),
    ...(u.adopt_tuf === true ? { adopt_tuf: true } : {}),
  };
}

/** Its shape only: the delta manifest's signature is what is checked before it is used. */
function isDeltaOffer(d: unknown): d is DeltaOfferJson {
  if (typeof d !== 'object' || d === null) return false;
  const o = d as Record<string, unknown>;
  return (
    ['url', 'tool', 'sha256', 'source_sha256', 'manifest', 'signature'].every(
      (k) => typeof o[k] === 'string',
    ) && typeof o.size === 'number'
  );
}
