/**
 * Where simulated devices enter the real server. Two layers, the same production code below them:
 * - `store`: the functions the device routes call — heartbeats through the HeartbeatBatcher (group commit,
 *   authentication by credential hash, then `store.updates.offer`), reports through the ReportBatcher (group
 *   commit of `store.updates.reportBatch`) — without the JSON framing, routing and schema validation of
 *   Fastify (reports skip the route's credential lookup). The default: several times faster.
 * - `http`: every heartbeat and report as an HTTP request through Fastify's inject (no socket).
 */
import { createHash } from 'node:crypto';
import { isFleetError } from '../core/errors.js';
import { type PendingUpdateJson, pendingUpdateJson, type StatusReportJson } from '../protocol/device-api.js';
import type { ServerParts } from '../server/serve.js';

/** A status report's body, as the device protocol has it. */
export type ReportBody = StatusReportJson;

export interface Gateway {
  /** Heartbeats of many devices at one instant; the pending updates each is told about (null: refused). */
  heartbeats(
    devices: ReadonlyArray<{ id: string; firmware: string | null }>,
  ): Promise<Array<PendingUpdateJson[] | null>>;
  /** Reports of many devices at one instant: false where the server refuses one (timed out, cancelled meanwhile). */
  reports(items: ReadonlyArray<{ deviceId: string; updateId: string; body: ReportBody }>): Promise<boolean[]>;
}

/**
 * Each simulated device's secret is spelled from the scenario's seed and its id: nothing kept per device. It
 * guards a throw-away database; the server still hashes and compares it as any credential.
 */
export function deviceSecret(seed: number, id: string): string {
  return `fld_device_sim${seed}_${id}`;
}

export const secretHash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export function storeGateway(parts: () => ServerParts, seed: number): Gateway {
  // The server's own batchers, as its routes use them (a restarted server has new ones).
  const current = parts;
  return {
    async heartbeats(devices) {
      const { heartbeats } = current();
      const answers = await Promise.all(
        devices.map((d) =>
          heartbeats.submit({
            credentialHash: secretHash(deviceSecret(seed, d.id)),
            heartbeat: { deviceId: d.id, ...(d.firmware !== null ? { firmwareVersion: d.firmware } : {}) },
          }),
        ),
      );
      return answers.map((a) => (a.outcome.ok ? a.offers.map(pendingUpdateJson) : null));
    },
    async reports(items) {
      const { reports } = current();
      return Promise.all(
        items.map(({ deviceId, updateId, body }) =>
          reports
            .submit({
              deviceId,
              updateId,
              report: {
                seq: body.seq,
                state: body.state,
                progress: body.progress ?? undefined,
                error: body.error ?? undefined,
              },
            })
            .then(
              (r) => r.accepted,
              (error: unknown) => {
                if (isFleetError(error)) return false;
                throw error;
              },
            ),
        ),
      );
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
    async reports(items) {
      return Promise.all(
        items.map(async ({ deviceId, updateId, body }) => {
          const r = await post(`/api/device/v1/updates/${updateId}/status`, body, deviceId);
          return r.status === 200 && r.body.accepted === true;
        }),
      );
    },
  };
}
