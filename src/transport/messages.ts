/**
 * MQTT payloads → the device protocol's requests (protocol/mqtt.ts). Pure: parsing and validation, no broker.
 * The credential comes from the payload's `credential` or, for MQTT 5 clients, the user property
 * `authorization: Bearer …`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { FleetError } from '../core/errors.js';
import { findUnstorable } from '../core/unstorable.js';
import { HeartbeatBody, type HeartbeatJson } from '../protocol/device-api.js';
import { type ReportJson, ReportMessage, type RequestId } from '../protocol/mqtt.js';
import { TelemetryBody, type TelemetryJson } from '../protocol/telemetry.js';
import type { UpwardKind } from './topics.js';

/** Heartbeats and reports are small; anything near this is not one. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export type DeviceRequest =
  | { kind: 'heartbeat'; credential: string | undefined; requestId?: RequestId; body: HeartbeatJson }
  | { kind: 'reports'; credential: string | undefined; requestId?: RequestId; body: ReportJson }
  | { kind: 'telemetry'; credential: string | undefined; requestId?: RequestId; body: TelemetryJson };

export type Parsed =
  | { ok: true; request: DeviceRequest }
  | { ok: false; error: FleetError; requestId?: RequestId };

const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false });
addFormats.default(ajv);
const validators: Record<UpwardKind, ValidateFunction> = {
  heartbeat: ajv.compile(HeartbeatBody),
  reports: ajv.compile(ReportMessage),
  telemetry: ajv.compile(TelemetryBody),
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
  const request: DeviceRequest =
    kind === 'heartbeat'
      ? { kind, credential: presented, body: body as HeartbeatJson, ...withId }
      : kind === 'telemetry'
        ? { kind, credential: presented, body: body as TelemetryJson, ...withId }
        : { kind, credential: presented, body: body as ReportJson, ...withId };
  return { ok: true, request };
}
