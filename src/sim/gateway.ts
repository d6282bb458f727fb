/**
 * Where simulated devices enter the real server. Two layers, the same production code below them:
 * - `store`: the functions the device routes call — heartbeats through the HeartbeatBatcher (group commit,
 *   authentication by credential hash, then `store.updates.offer`), reports through `store.updates.report`
 *   — without the JSON framing, routing and schema validation of Fastify (reports skip the route's
 *   credential lookup). The default: several times faster.
 * - `http`: every heartbeat and report as an HTTP request through Fastify's inject (no socket).
 */
import { createHash } from 'node:crypto';
import { isFleetError } from '../core/errors.js';
import { HeartbeatBatcher } from '../registry/heartbeat-batcher.js';
import { pendingUpdateJson } from '../server/json.js';
import type { ServerParts } from '../server/serve.js';
import type { PendingUpdateJson } from './protocol-device.js';

export interface ReportBody {
  seq: number;
  state: 'downloading' | 'installing' | 'verifying' | 'succeeded' | 'failed' | 'rolled_back';
  progress?: number;
  error?: string;
}

export interface Gateway {
  /** Heartbeats of many devices at one instant; the pending updates each is told about (null: refused). */
  heartbeats(
    devices: ReadonlyArray<{ id: string; firmware: string | null }>,
  ): Promise<Array<PendingUpdateJson[] | null>>;
  /** false when the server refuses the report (the update was timed out or cancelled meanwhile). */
  report(deviceId: string, updateId: string, body: ReportBody): Promise<boolean>;
}

/** Each simulated device's secret is derived from the scenario's seed and its id: nothing kept per device. */
export function deviceSecret(seed: number, id: string): string {
  return `fld_device_${createHash('sha256').update(`${seed}\n${id}`).digest('base64url').slice(0, 32)}`;
}

export const secretHash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export function storeGateway(parts: () => ServerParts, seed: number): Gateway {
  let batcher: HeartbeatBatcher | undefined;
  let batcherOf: ServerParts | undefined;
  return {
    async heartbeats(devices) {
      const p = parts();
      if (batcherOf !== p) {
        batcher = new HeartbeatBatcher(p.store, p.clock, p.thresholds);
        batcherOf = p;
      }
      const answers = await Promise.all(
        devices.map((d) =>
          batcher!.submit({
            credentialHash: secretHash(deviceSecret(seed, d.id)),
            heartbeat: { deviceId: d.id, ...(d.firmware !== null ? { firmwareVersion: d.firmware } : {}) },
          }),
        ),
      );
      return answers.map((a) => (a.outcome.ok ? a.offers.map(pendingUpdateJson) : null));
    },
    async report(deviceId, updateId, body) {
      const p = parts();
      try {
        const r = await p.store.updates.report(
          deviceId,
          updateId,
          { seq: body.seq, state: body.state, progress: body.progress, error: body.error },
          { now: p.clock.now(), thresholds: p.thresholds },
        );
        return r.accepted;
      } catch (error) {
        if (isFleetError(error)) return false;
        throw error;
      }
    },
  };
}

export function httpGateway(parts: () => ServerParts, seed: number): Gateway {
  const post = async (path: string, body: unknown, deviceId: string) => {
    const r = await parts().app.inject({
      method: 'POST',
      url: path,
      payload: body as Record<string, unknown>,
      headers: { authorization: `Bearer ${deviceId}.${deviceSecret(seed, deviceId)}` },
    });
    return { status: r.statusCode, body: r.json() as Record<string, unknown> };
  };
  return {
    async heartbeats(devices) {
      return Promise.all(
        devices.map(async (d) => {
          const r = await post(
            '/api/device/v1/heartbeat',
            { device_id: d.id, ...(d.firmware !== null ? { firmware_version: d.firmware } : {}) },
            d.id,
          );
          return r.status === 200 ? (r.body.pending_updates as PendingUpdateJson[]) : null;
        }),
      );
    },
    async report(deviceId, updateId, body) {
      const r = await post(`/api/device/v1/updates/${updateId}/status`, body, deviceId);
      return r.status === 200 && r.body.accepted === true;
    },
  };
}
