/**
 * The approval queue's operator messages (docs/enrollment.md): accepting or rejecting devices by id or by
 * filter, with one result per device, and the list of devices waiting.
 */
import { type Static, Type } from 'typebox';
import { DeviceId } from './common.js';
import type { DeviceJson } from './operator-api.js';

export const AdmissionBody = Type.Union(
  [
    Type.Object(
      { ids: Type.Array(DeviceId, { minItems: 1, maxItems: 10_000 }) },
      { additionalProperties: false },
    ),
    Type.Object(
      { filter: Type.String({ minLength: 1, maxLength: 4096, description: 'Filter expression' }) },
      { additionalProperties: false },
    ),
  ],
  { description: 'Device ids, or a filter (only devices the decision can move are taken)' },
);
export type AdmissionBodyJson = Static<typeof AdmissionBody>;

export const AdmissionResultJson = Type.Object({
  id: Type.String(),
  ok: Type.Boolean(),
  admission: Type.Optional(Type.String()),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});

export const AdmissionReply = Type.Object({
  results: Type.Array(AdmissionResultJson),
  moved: Type.Integer({ description: 'How many devices changed admission' }),
});
export type AdmissionReplyJson = Static<typeof AdmissionReply>;

export const WaitingQuery = Type.Object(
  {
    admission: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('rejected')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

export const WaitingDeviceJson = Type.Object({
  device: Type.Ref('Device'),
  key_fingerprint: Type.Union([Type.String(), Type.Null()], {
    description:
      'SHA-256 of the public key (or request secret) the device asked with: compare it with the device',
  }),
  requested_at: Type.String({ format: 'date-time' }),
});
export const WaitingReply = Type.Object({ devices: Type.Array(WaitingDeviceJson) });
/** The device is a schema reference (`Device`): its type is spelled here. */
export interface WaitingReplyJson {
  devices: Array<Omit<Static<typeof WaitingDeviceJson>, 'device'> & { device: DeviceJson }>;
}
