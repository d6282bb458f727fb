/**
 * The device protocol over MQTT (docs/mqtt.md): a request's payload is the HTTP body (reports add the
 * `update_id` HTTP carries in its path), plus two fields HTTP keeps in headers: `credential` (the device
 * credential, for MQTT 3.1.1, which has no properties; MQTT 5 clients may send it as the user property
 * `authorization: Bearer …` instead) and `request_id`, echoed in the reply so a device can match answers to
 * questions. What the server publishes to a device's inbox is tagged by `type`.
 */
import { type Static, Type } from 'typebox';
import type { FleetError } from '../core/errors.js';
import { type DeviceCommandJson, deviceCommandJson } from './commands.js';
import { errorJson } from './common.js';

type DeliveredCommandSource = Parameters<typeof deviceCommandJson>[0];

import {
  type OfferSource,
  type PendingUpdateJson,
  pendingUpdateJson,
  StatusReportBody,
} from './device-api.js';

export const ReportMessage = Type.Object(
  { ...StatusReportBody.properties, update_id: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);
export type ReportJson = Static<typeof ReportMessage>;

export type RequestId = string | number;

const withRequest = (requestId: RequestId | undefined) =>
  requestId !== undefined ? { request_id: requestId } : {};

export interface HeartbeatInbox {
  type: 'heartbeat';
  request_id?: RequestId;
  pending_updates: PendingUpdateJson[];
  commands?: DeviceCommandJson[];
  next_heartbeat: number;
}

export function heartbeatReply(
  requestId: RequestId | undefined,
  offers: OfferSource[],
  nextHeartbeatSec: number,
  commands: DeliveredCommandSource[] = [],
): HeartbeatInbox {
  return {
    type: 'heartbeat' as const,
    ...withRequest(requestId),
    pending_updates: offers.map(pendingUpdateJson),
    ...(commands.length > 0 ? { commands: commands.map(deviceCommandJson) } : {}),
    next_heartbeat: nextHeartbeatSec,
  };
}

export interface ReportInbox {
  type: 'report';
  request_id?: RequestId;
  update_id: string;
  seq: number;
  accepted: boolean;
  state: string;
}

export function reportReply(
  requestId: RequestId | undefined,
  report: ReportJson,
  outcome: { accepted: boolean; state: string },
): ReportInbox {
  return {
    type: 'report' as const,
    ...withRequest(requestId),
    update_id: report.update_id,
    seq: report.seq,
    accepted: outcome.accepted,
    state: outcome.state,
  };
}

/** The answer to a telemetry report (docs/telemetry.md): when the next one is welcome. */
export interface TelemetryInbox {
  type: 'telemetry';
  request_id?: RequestId;
  accepted: boolean;
  retry_after: number;
}

export function telemetryReply(
  requestId: RequestId | undefined,
  outcome: { accepted: boolean; retryAfterSec: number },
): TelemetryInbox {
  return {
    type: 'telemetry' as const,
    ...withRequest(requestId),
    accepted: outcome.accepted,
    retry_after: outcome.retryAfterSec,
  };
}

export interface ErrorInbox {
  type: 'error';
  request_id?: RequestId;
  error: { code: string; message: string };
}

/** The HTTP error shape, `{error: {code, message}}`, tagged so a device can tell it from a reply. */
export function errorReply(requestId: RequestId | undefined, error: FleetError): ErrorInbox {
  const { code, message } = errorJson(error).error;
  return { type: 'error' as const, ...withRequest(requestId), error: { code, message } };
}

/** Sent to a device's inbox when it has something new: it should heartbeat now. */
export const WAKE = { type: 'wake' as const };

export type InboxMessage = HeartbeatInbox | ReportInbox | TelemetryInbox | ErrorInbox | typeof WAKE;
