/**
 * MQTT payloads ⇄ the device protocol. Pure: parsing, validation and the inbox messages, no broker.
 *
 * A request's payload is the HTTP body (reports add the `update_id` HTTP carries in its path), plus two
 * fields HTTP keeps in headers: `credential` (the device credential, for MQTT 3.1.1, which has no
 * properties; MQTT 5 clients may send it as the user property `authorization: Bearer …` instead) and
 * `request_id`, echoed in the reply so a device can match answers to questions.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { type Static, Type } from 'typebox';
import { FleetError } from '../core/errors.js';
import { findUnstorable } from '../core/unstorable.js';
import { pendingUpdateJson } from '../server/json.js';
import { HeartbeatBody, StatusReportBody } from '../server/schemas.js';
import type { ReportOutcome, UpdateOffer } from '../store/store.js';
import type { UpwardKind } from './topics.js';

/** Heartbeats and reports are small; anything near this is not one. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const ReportMessage = Type.Object(
  { ...StatusReportBody.properties, update_id: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);

export type HeartbeatJson = Static<typeof HeartbeatBody>;
export type ReportJson = Static<typeof ReportMessage>;

type RequestId = string | number;

export type DeviceRequest =
  | { kind: 'heartbeat'; credential: string | undefined; requestId?: RequestId; body: HeartbeatJson }
  | { kind: 'reports'; credential: string | undefined; requestId?: RequestId; body: ReportJson };

export type Parsed =
  | { ok: true; request: DeviceRequest }
  | { ok: false; error: FleetError; requestId?: RequestId };

const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false });
addFormats.default(ajv);
const validators: Record<UpwardKind, ValidateFunction> = {
  heartbeat: ajv.compile(HeartbeatBody),
  reports: ajv.compile(ReportMessage),
};

/** User properties may repeat a key (then mqtt.js gives an array): the first value counts. */
export type UserProperties = Record<string, string | string[]> | undefined;

function bearerProperty(props: UserProperties): string | undefined {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (key.toLowerCase() !== 'authorization') continue;
    const text = Array.isArray(value) ? value[0] : value;
    const match = text ? /^Bearer\s+(\S+)$/i.exec(text) : null;
    if (match) return match[1];
  }
  return undefined;
}

function validationMessage(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const path = `payload${e.instancePath.replace(/\//g, '.')}`;
      const p = e.params as Record<string, unknown>;
      if (e.keyword === 'additionalProperties')
        return `${path}: unknown field "${String(p.additionalProperty)}"`;
      if (e.keyword === 'required') return `${path}: missing field "${String(p.missingProperty)}"`;
      return `${path} ${e.message ?? 'is invalid'}`;
    })
    .join('; ');
}

/** Never throws: whatever arrives, the answer is a request or an error to send back. */
export function parseRequest(kind: UpwardKind, payload: Buffer, props: UserProperties): Parsed {
  if (payload.length > MAX_PAYLOAD_BYTES) {
    return {
      ok: false,
      error: new FleetError('PAYLOAD_TOO_LARGE', `payloads are at most ${MAX_PAYLOAD_BYTES} bytes`),
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    return {
      ok: false,
      error: new FleetError(
        'MALFORMED_JSON',
        `payload is not valid JSON: ${(e as Error).message}`,
        undefined,
        {
          cause: e,
        },
      ),
    };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, error: new FleetError('VALIDATION', 'payload must be a JSON object') };
  }
  const { credential, request_id, ...body } = json as Record<string, unknown>;
  const requestId =
    (typeof request_id === 'string' && request_id.length <= 128) || typeof request_id === 'number'
      ? request_id
      : undefined;
  const withId = requestId !== undefined ? { requestId } : {};
  const validate = validators[kind];
  if (!validate(body)) {
    return { ok: false, error: new FleetError('VALIDATION', validationMessage(validate.errors)), ...withId };
  }
  // What no column can hold (a NUL) is refused here as over HTTP, before it reaches a batch.
  const unstorable = findUnstorable(body);
  if (unstorable) {
    const at = `payload${unstorable.path.replace(/\//g, '.')}`;
    return { ok: false, error: new FleetError('VALIDATION', `${at} ${unstorable.problem}`), ...withId };
  }
  const presented = typeof credential === 'string' ? credential : bearerProperty(props);
  const request =
    kind === 'heartbeat'
      ? { kind, credential: presented, body: body as HeartbeatJson, ...withId }
      : { kind, credential: presented, body: body as ReportJson, ...withId };
  return { ok: true, request };
}

// --- what the server publishes to a device's inbox ---

const withRequest = (requestId: RequestId | undefined) =>
  requestId !== undefined ? { request_id: requestId } : {};

export function heartbeatReply(
  requestId: RequestId | undefined,
  offers: UpdateOffer[],
  nextHeartbeatSec: number,
) {
  return {
    type: 'heartbeat' as const,
    ...withRequest(requestId),
    pending_updates: offers.map(pendingUpdateJson),
    next_heartbeat: nextHeartbeatSec,
  };
}

export function reportReply(requestId: RequestId | undefined, report: ReportJson, outcome: ReportOutcome) {
  return {
    type: 'report' as const,
    ...withRequest(requestId),
    update_id: report.update_id,
    seq: report.seq,
    accepted: outcome.accepted,
    state: outcome.state,
  };
}

/** The HTTP error shape, `{error: {code, message}}`, tagged so a device can tell it from a reply. */
export function errorReply(requestId: RequestId | undefined, error: FleetError) {
  return {
    type: 'error' as const,
    ...withRequest(requestId),
    error: { code: error.code, message: error.message },
  };
}

export const WAKE = { type: 'wake' as const };
