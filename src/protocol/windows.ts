/**
 * Device windows' messages (docs/rollouts.md, "Windows that belong to devices"): a device's own maintenance
 * windows, set by an operator or reported by the device, its deferrals of offered updates, and the device's
 * request to defer one.
 */
import { type Static, Type } from 'typebox';
import { DEVICE_DEFERRAL_MAX_MS } from '../core/rollout/deferral.js';
import { DeviceWindowsSchema } from '../core/rollout/device-windows.js';
import { DeviceId, DurationText, iso, Nullable } from './common.js';

export const DeviceWindowsBody = Type.Object(
  { windows: DeviceWindowsSchema },
  { additionalProperties: false, description: "The device's windows; they replace those it had" },
);

export const DeviceWindowParams = Type.Object({ id: DeviceId });

const WindowDocumentJson = Type.Record(Type.String(), Type.Unknown(), {
  description: 'A window in the rollout spec form, every default spelled out',
});

export const DeferralJson = Type.Object({
  update_id: Type.String(),
  rollout_id: Nullable(Type.String()),
  count: Type.Integer({ description: 'Deferrals made' }),
  first_at: Type.String({ description: 'The first deferral (max_total is counted from it)' }),
  deferred_until: Type.String(),
});

export const DeviceWindowsJson = Type.Object({
  device_id: Type.String(),
  windows: Type.Array(WindowDocumentJson),
  source: Type.Enum(['operator', 'device']),
  updated_by: Nullable(Type.String()),
  updated_at: Type.String(),
});

export const DeviceWindowsReply = Type.Object({
  device_id: Type.String(),
  windows: Nullable(DeviceWindowsJson),
  deferrals: Type.Array(DeferralJson),
});

export const WindowsListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 100' })),
  after: Type.Optional(
    Type.String({ maxLength: 128, description: 'The last device id of the previous page' }),
  ),
});

export const WindowsListReply = Type.Object({
  windows: Type.Array(DeviceWindowsJson),
  next: Nullable(Type.String({ description: 'Give as `after` for the next page' })),
});

export const DeferBody = Type.Object(
  {
    for: Type.Optional(
      DurationText('How long to put the update off (default 1h; cut to the budget)', DEVICE_DEFERRAL_MAX_MS),
    ),
  },
  { additionalProperties: false },
);

export const DeferReply = DeferralJson;

/** The store's records as JSON (read through the fields they share). */
export const deviceWindowsJson = (w: {
  deviceId: string;
  windows: object[];
  source: 'operator' | 'device';
  updatedBy: string | null;
  updatedAt: number;
}): Static<typeof DeviceWindowsJson> => ({
  device_id: w.deviceId,
  windows: w.windows as Array<Record<string, unknown>>,
  source: w.source,
  updated_by: w.updatedBy,
  updated_at: iso(w.updatedAt)!,
});

export const deferralJson = (d: {
  updateId: string;
  rolloutId: string | null;
  count: number;
  firstAt: number;
  deferredUntil: number;
}): Static<typeof DeferralJson> => ({
  update_id: d.updateId,
  rollout_id: d.rolloutId,
  count: d.count,
  first_at: iso(d.firstAt)!,
  deferred_until: iso(d.deferredUntil)!,
});
