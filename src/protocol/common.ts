/**
 * What every message of the protocol shares: the error shape, the bounds of integers and durations, device ids
 * and tags. Plain data (TypeBox schemas and their types): no Fastify, no store.
 */
import { type Static, type TSchema, Type } from 'typebox';
import { MAX_DURATION_TEXT } from '../core/duration.js';
import type { ErrorCode, FleetError } from '../core/errors.js';

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ErrorReply = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, e.g. FILTER_SYNTAX' }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorReply' },
);
/** The error body with its code narrowed to the codes FleetD has. */
export type ErrorJson = Static<typeof ErrorReply> & { error: { code: ErrorCode } };

/** The one body every error answer has, whoever writes it (HTTP error handler, HTTP layer, downloads, MQTT). */
export function errorJson(error: FleetError): ErrorJson {
  return {
    error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) },
  };
}

const errors = {
  400: Type.Ref('ErrorReply'),
  401: Type.Ref('ErrorReply'),
  403: Type.Ref('ErrorReply'),
  404: Type.Ref('ErrorReply'),
  409: Type.Ref('ErrorReply'),
  413: Type.Ref('ErrorReply'),
};
export const withErrors = <T extends object>(ok: T) => ({ ...ok, ...errors });

/**
 * Integer bounds that fit their columns: an int4 column (PostgreSQL `integer`) holds up to 2^31-1; an event id
 * is a bigint, but JSON numbers are exact only up to 2^53-1, so cursors stop there.
 */
export const INT4_MAX = 2_147_483_647;
export const EVENT_ID_MAX = Number.MAX_SAFE_INTEGER;
export const EventCursor = (description: string, minimum = 0) =>
  Type.Integer({ minimum, maximum: EVENT_ID_MAX, description });
/**
 * A duration in a query or body (e.g. 7d), with the bound the route enforces stated for the reader. Its form
 * is checked by parseDuration in the route, whose message says what a duration looks like.
 */
export const DurationText = (description: string, maxMs: number) =>
  Type.String({
    maxLength: MAX_DURATION_TEXT,
    description: `${description}; at most ${maxMs / 86_400_000}d`,
  });

// A record's key schema becomes a patternProperties key: without additionalProperties false, a key that does
// not match the pattern would not be checked at all.
export const Tags = Type.Record(
  Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' }),
  Type.String({ maxLength: 256 }),
  {
    additionalProperties: false,
    maxProperties: 64,
    description:
      'Tag key (letters, digits, _ . : -, at most 64) → value (at most 256 characters); at most 64 tags',
  },
);
export const DeviceId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$',
  description: 'Device id',
});

/** A millisecond instant (or none) as the API writes it: ISO-8601 UTC. */
export const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();
