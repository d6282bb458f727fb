/**
 * Remote configuration's messages (docs/configuration.md): the documents an operator sets, a device's desired
 * configuration next to what it reported, what a heartbeat answer hands the device and what it posts back.
 */
import { type Static, Type } from 'typebox';
import {
  type ConfigResult,
  type ConfigTarget,
  type JsonObject,
  MAX_CONFIG_OUTPUT,
} from '../core/config-document.js';
import { DeviceId, iso, Nullable } from './common.js';

/** The store's records, as far as the JSON shows them. */
interface ConfigDocumentSource {
  name: string;
  version: number;
  hash: string;
  document: JsonObject;
  target: ConfigTarget;
  scope: string | null;
  createdAt: number;
  updatedAt: number;
  updatedBy: string;
}
interface Stamp {
  version: string;
  hash: string;
  at: number;
}
interface DeviceConfigSource {
  deviceId: string;
  desired: Stamp | null;
  applied: Stamp | null;
  last: { result: ConfigResult; hash: string; output: string | null; at: number } | null;
  drift: boolean;
}

const JsonDocument = Type.Record(Type.String(), Type.Unknown(), {
  description: 'A JSON object; at most 64 KiB',
});

export const ConfigParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 64, description: 'The document name' }),
});

export const SetConfigBody = Type.Object(
  {
    document: JsonDocument,
    filter: Type.Optional(
      Type.String({
        maxLength: 4096,
        description: 'The devices it applies to; without it (and device) every one',
      }),
    ),
    device: Type.Optional(DeviceId),
    staged: Type.Optional(
      Type.Boolean({
        description:
          'Stage the version instead: no device gets it until it is released to it (POST /config/{name}/release) or promoted',
      }),
    ),
  },
  { additionalProperties: false },
);

const ConfigSummaryFields = {
  name: Type.String(),
  version: Type.Integer({ description: 'Goes up by one each time the content or target changes' }),
  hash: Type.String({ description: 'SHA-256 of the canonical JSON (keys sorted)' }),
  target: Type.Union([Type.Literal('fleet'), Type.Literal('filter'), Type.Literal('device')]),
  filter: Nullable(Type.String()),
  device_id: Nullable(Type.String()),
  scope: Nullable(Type.String({ description: 'The scope it was set under; it applies within it' })),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  updated_by: Type.String(),
};
export const ConfigSummary = Type.Object(ConfigSummaryFields);
export const ConfigDocumentJson = Type.Object({ ...ConfigSummaryFields, document: JsonDocument });
const StagedProgressJson = Type.Object({
  released: Type.Integer({ description: 'Devices it was released to' }),
  applied: Type.Integer({ description: 'Of those, reported applied on the configuration holding it' }),
  failed: Type.Integer({ description: 'Of those, reported failed on it' }),
  pending: Type.Integer({ description: 'Of those, not reported on it yet' }),
});
const StagedSummaryFields = {
  name: Type.String(),
  version: Type.Integer({ description: 'The staged version' }),
  current_version: Nullable(
    Type.Integer({ description: 'The version every other device keeps; null before the first promotion' }),
  ),
  hash: Type.String(),
  target: ConfigSummaryFields.target,
  filter: Nullable(Type.String()),
  device_id: Nullable(Type.String()),
  scope: Nullable(Type.String()),
  staged_at: Type.String({ format: 'date-time' }),
  staged_by: Type.String(),
  progress: StagedProgressJson,
};
export const StagedSummary = Type.Object(StagedSummaryFields);
export const StagedConfigJson = Type.Object({ ...StagedSummaryFields, document: JsonDocument });
export const ConfigList = Type.Object({
  documents: Type.Array(ConfigSummary),
  staged: Type.Array(StagedSummary, { description: 'Staged versions, not yet promoted' }),
});
export const SetConfigReply = Type.Object({
  document: ConfigDocumentJson,
  changed: Type.Boolean({ description: 'False when the same content and target were set again' }),
  staged: Type.Boolean({ description: 'The version was staged, not set' }),
});

export const ReleaseConfigBody = Type.Object(
  {
    version: Type.Integer({ minimum: 1, description: 'The staged version, as a check the view is current' }),
    filter: Type.Optional(
      Type.String({ maxLength: 4096, description: 'Only the devices of this filter (within its target)' }),
    ),
    device: Type.Optional(DeviceId),
    count: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'At most this many devices, by id' }),
    ),
  },
  { additionalProperties: false },
);
export const ReleaseConfigReply = Type.Object({
  released: Type.Integer({ description: 'Devices released to now' }),
  staged: StagedConfigJson,
});
export const PromoteConfigBody = Type.Object(
  { version: Type.Integer({ minimum: 1, description: 'The staged version' }) },
  { additionalProperties: false },
);

interface StagedSource {
  name: string;
  version: number;
  hash: string;
  document: JsonObject;
  target: ConfigTarget;
  scope: string | null;
  stagedAt: number;
  stagedBy: string;
  currentVersion: number | null;
  progress: { released: number; applied: number; failed: number };
}

/** Where a document applies, as its JSON's three fields. */
const targetJson = (t: ConfigTarget) => ({
  target: t.kind,
  filter: t.kind === 'filter' ? t.filter : null,
  device_id: t.kind === 'device' ? t.deviceId : null,
});

export function stagedSummaryJson(r: StagedSource): Static<typeof StagedSummary> {
  const { released, applied, failed } = r.progress;
  return {
    name: r.name,
    version: r.version,
    current_version: r.currentVersion,
    hash: r.hash,
    ...targetJson(r.target),
    scope: r.scope,
    staged_at: iso(r.stagedAt)!,
    staged_by: r.stagedBy,
    progress: { released, applied, failed, pending: released - applied - failed },
  };
}

export const stagedConfigJson = (r: StagedSource): Static<typeof StagedConfigJson> => ({
  ...stagedSummaryJson(r),
  document: r.document,
});

/** A staged version in the shape of a set document (the reply to a staged PUT). */
export const stagedAsDocumentJson = (r: StagedSource): Static<typeof ConfigDocumentJson> =>
  configDocumentJson({ ...r, createdAt: r.stagedAt, updatedAt: r.stagedAt, updatedBy: r.stagedBy });

export function configSummaryJson(r: ConfigDocumentSource): Static<typeof ConfigSummary> {
  return {
    name: r.name,
    version: r.version,
    hash: r.hash,
    ...targetJson(r.target),
    scope: r.scope,
    created_at: iso(r.createdAt)!,
    updated_at: iso(r.updatedAt)!,
    updated_by: r.updatedBy,
  };
}

export const configDocumentJson = (r: ConfigDocumentSource): Static<typeof ConfigDocumentJson> => ({
  ...configSummaryJson(r),
  document: r.document,
});

const Applied = Type.Object({
  version: Type.String(),
  hash: Type.String(),
  at: Type.String({ format: 'date-time' }),
});
export const DeviceConfigJson = Type.Object({
  device_id: Type.String(),
  /** Null when no document applies to the device. */
  desired: Nullable(Applied),
  applied: Nullable(Applied),
  last_report: Nullable(
    Type.Object({
      result: Type.Union([Type.Literal('applied'), Type.Literal('failed')]),
      hash: Type.String(),
      output: Nullable(Type.String({ description: "The tail of the agent's hook output" })),
      at: Type.String({ format: 'date-time' }),
    }),
  ),
  drift: Type.Boolean({ description: 'Something is desired and the device has not applied exactly it' }),
});

export function deviceConfigJson(s: DeviceConfigSource): Static<typeof DeviceConfigJson> {
  const at = (x: Stamp | null) => x && { version: x.version, hash: x.hash, at: iso(x.at)! };
  return {
    device_id: s.deviceId,
    desired: at(s.desired),
    applied: at(s.applied),
    last_report: s.last && {
      result: s.last.result,
      hash: s.last.hash,
      output: s.last.output,
      at: iso(s.last.at)!,
    },
    drift: s.drift,
  };
}

/** In the heartbeat answer: the desired configuration, with the document while the device has not reported on it. */
export const DeviceConfigOffer = Type.Object({
  version: Type.String({ description: 'The documents merged, in order: base@3+east@1' }),
  hash: Type.String(),
  document: Type.Optional(JsonDocument),
});
export type DeviceConfigOfferJson = Static<typeof DeviceConfigOffer>;

export const configOfferJson = (o: {
  version: string;
  hash: string;
  document?: JsonObject;
}): DeviceConfigOfferJson => ({
  version: o.version,
  hash: o.hash,
  ...(o.document === undefined ? {} : { document: o.document }),
});

export const ConfigStatusBody = Type.Object(
  {
    version: Type.String({ minLength: 1, maxLength: 4096 }),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    result: Type.Union([Type.Literal('applied'), Type.Literal('failed')]),
    output: Type.Optional(
      Type.String({ maxLength: MAX_CONFIG_OUTPUT, description: "The tail of the hook's stdout and stderr" }),
    ),
  },
  { additionalProperties: false },
);
export type ConfigStatusJson = Static<typeof ConfigStatusBody>;
export const ConfigStatusReply = DeviceConfigJson;
