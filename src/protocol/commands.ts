/**
 * Remote commands' messages (docs/remote-commands.md): what an operator sends, what a device is handed in its
 * heartbeat answer (HTTP and MQTT alike) and what it posts back.
 */
import { createHash } from 'node:crypto';
import { type Static, Type } from 'typebox';
import {
  type CommandSpec,
  MAX_COMMAND_LOGS_BYTES,
  MAX_COMMAND_OUTPUT,
  MAX_SCRIPT_BYTES,
} from '../core/command.js';
import { DeviceId, Nullable } from './common.js';

const CommandKind = Type.Union([
  Type.Literal('reboot'),
  Type.Literal('restart-app'),
  Type.Literal('collect-logs'),
  Type.Literal('run'),
]);

const CommandFields = {
  kind: CommandKind,
  app: Type.Optional(Type.String({ maxLength: 128, description: 'restart-app: the application' })),
  since: Type.Optional(Type.Integer({ minimum: 1, description: 'collect-logs: how far back, in seconds' })),
  script: Type.Optional(Type.String({ maxLength: MAX_SCRIPT_BYTES, description: 'run: the shell script' })),
  signature: Type.Optional(
    Type.String({
      maxLength: 128,
      description:
        'run: Ed25519 signature (base64) by the release-signing key over "fleetd-script-v1\\n" + script',
    }),
  ),
};
export const CommandBody = Type.Object(CommandFields, { additionalProperties: false });
export type CommandBodyJson = Static<typeof CommandBody>;

/** What a device is handed: its command and the instant after which it must not start it. */
export const DeviceCommand = Type.Object({
  id: Type.String(),
  ...CommandFields,
  expires_at: Type.String({ format: 'date-time' }),
});
export type DeviceCommandJson = Static<typeof DeviceCommand>;

export function commandFields(spec: CommandSpec): CommandBodyJson {
  return {
    kind: spec.kind,
    ...(spec.app !== undefined ? { app: spec.app } : {}),
    ...(spec.sinceSec !== undefined ? { since: spec.sinceSec } : {}),
    ...(spec.script !== undefined ? { script: spec.script } : {}),
    ...(spec.signature !== undefined ? { signature: spec.signature } : {}),
  };
}

export function commandSpec(body: CommandBodyJson): CommandSpec {
  return {
    kind: body.kind,
    ...(body.app !== undefined ? { app: body.app } : {}),
    ...(body.since !== undefined ? { sinceSec: body.since } : {}),
    ...(body.script !== undefined ? { script: body.script } : {}),
    ...(body.signature !== undefined ? { signature: body.signature } : {}),
  };
}

export function deviceCommandJson(c: {
  id: string;
  spec: CommandSpec;
  expiresAt: number;
}): DeviceCommandJson {
  return { id: c.id, ...commandFields(c.spec), expires_at: new Date(c.expiresAt).toISOString() };
}

export const CommandResultBody = Type.Object(
  {
    exit_code: Nullable(Type.Integer({ minimum: -1, maximum: 255, description: 'Null when it never ran' })),
    output: Type.String({ maxLength: MAX_COMMAND_OUTPUT, description: 'The tail of stdout and stderr' }),
    output_truncated: Type.Boolean(),
    error: Nullable(
      Type.String({ maxLength: 1024, description: "The agent's reason when it did not run it" }),
    ),
    logs: Type.Optional(
      Type.String({
        maxLength: Math.ceil(MAX_COMMAND_LOGS_BYTES / 3) * 4,
        description: `collect-logs: the file, base64, at most ${MAX_COMMAND_LOGS_BYTES / 1024 / 1024} MiB`,
      }),
    ),
  },
  { additionalProperties: false },
);
export type CommandResultJson = Static<typeof CommandResultBody>;

export const CommandResultReply = Type.Object({ accepted: Type.Boolean(), state: Type.String() });
export const CommandParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
export const CommandDeviceParams = Type.Object({ id: Type.String({ maxLength: 64 }), device: DeviceId });

export const CreateCommandBody = Type.Union([
  Type.Object(
    {
      ids: Type.Array(DeviceId, { minItems: 1, maxItems: 10_000 }),
      command: CommandBody,
      deadline: Type.Optional(Type.String({ maxLength: 32, description: 'e.g. 10m (default), at most 7d' })),
      max_concurrent: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      filter: Type.String({ minLength: 1, maxLength: 4096 }),
      command: CommandBody,
      deadline: Type.Optional(Type.String({ maxLength: 32 })),
      max_concurrent: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    },
    { additionalProperties: false },
  ),
]);
export type CreateCommandBodyJson = Static<typeof CreateCommandBody>;

const CommandSummary = {
  id: Type.String(),
  kind: CommandKind,
  app: Type.Optional(Type.String()),
  since: Type.Optional(Type.Integer()),
  script_sha256: Type.Optional(
    Type.String({ description: 'run: the SHA-256 of the script (not the script)' }),
  ),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  max_concurrent: Type.Integer(),
  actor: Type.String(),
};

export const CommandTargetJson = Type.Object({
  device_id: Type.String(),
  state: Type.String(),
  delivered_at: Nullable(Type.String({ format: 'date-time' })),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
  exit_code: Nullable(Type.Integer()),
  output: Nullable(Type.String()),
  output_truncated: Type.Boolean(),
  error: Nullable(Type.String()),
  logs_bytes: Nullable(Type.Integer()),
});
export type CommandTargetJsonType = Static<typeof CommandTargetJson>;

export const CommandJson = Type.Object({
  ...CommandSummary,
  counts: Type.Record(Type.String(), Type.Integer()),
  devices: Type.Optional(Type.Array(CommandTargetJson)),
});
export type CommandJsonType = Static<typeof CommandJson>;

export const CreateCommandReply = Type.Object({
  command: Nullable(CommandJson),
  results: Type.Array(
    Type.Object({
      id: Type.String(),
      ok: Type.Boolean(),
      error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
    }),
  ),
});
export type CreateCommandReplyJson = Static<typeof CreateCommandReply>;

export const DeviceCommandList = Type.Object({
  commands: Type.Array(Type.Object({ ...CommandSummary, result: CommandTargetJson })),
});
export type DeviceCommandListJson = Static<typeof DeviceCommandList>;

export const summaryJson = (c: {
  id: string;
  spec: CommandSpec;
  createdAt: number;
  expiresAt: number;
  maxConcurrent: number;
  actor: string;
}) => ({
  id: c.id,
  kind: c.spec.kind,
  ...(c.spec.app !== undefined ? { app: c.spec.app } : {}),
  ...(c.spec.sinceSec !== undefined ? { since: c.spec.sinceSec } : {}),
  ...(c.spec.script !== undefined
    ? { script_sha256: createHash('sha256').update(c.spec.script, 'utf8').digest('hex') }
    : {}),
  created_at: new Date(c.createdAt).toISOString(),
  expires_at: new Date(c.expiresAt).toISOString(),
  max_concurrent: c.maxConcurrent,
  actor: c.actor,
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const targetJson = (t: {
  deviceId: string;
  state: string;
  deliveredAt: number | null;
  finishedAt: number | null;
  exitCode: number | null;
  output: string | null;
  outputTruncated: boolean;
  error: string | null;
  logsBytes: number | null;
}): CommandTargetJsonType => ({
  device_id: t.deviceId,
  state: t.state,
  delivered_at: iso(t.deliveredAt),
  finished_at: iso(t.finishedAt),
  exit_code: t.exitCode,
  output: t.output,
  output_truncated: t.outputTruncated,
  error: t.error,
  logs_bytes: t.logsBytes,
});
