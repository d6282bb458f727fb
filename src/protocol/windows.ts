/**
 * Device windows' messages (docs/rollouts.md, "Windows that belong to devices"): a device's own maintenance
 * windows, set by an operator or reported by the device, its deferrals of offered updates, and the device's
 * request to defer one.
 */
import { type Static, Type } from 'typebox';
import { DEVICE_DEFERRAL_MAX_MS } from '../core/rollout/deferral.js';
import { DeviceWindowsSchema } from '../core/rollout/device-windows.js';
import { DeviceId, DurationText, iso, Nullable } from './common.js';
import { GroupName } from './groups.js';

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

export const ResolvedWindowsJson = Type.Object(
  {
    source: Type.Enum(['device', 'group', 'tag']),
    from: Type.Array(Type.String(), {
      description: "The groups' names or the key=value tags (none for device)",
    }),
    windows: Type.Array(WindowDocumentJson),
  },
  {
    description:
      'The windows the device takes in rollouts with window: device_defined, and where they come from',
  },
);

export const DeviceWindowsReply = Type.Object({
  device_id: Type.String(),
  windows: Nullable(DeviceWindowsJson),
  /** null: neither the device, its groups nor its tags have windows; each rollout's fallback window holds it. */
  resolved: Nullable(ResolvedWindowsJson),
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

/** Windows set on a group or a tag value (taken by devices without windows of their own). */
export const GroupWindowParams = Type.Object({ name: GroupName });
export const TagWindowParams = Type.Object({
  key: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'Tag key' }),
  value: Type.String({ minLength: 1, maxLength: 256, description: 'Tag value' }),
});

export const GroupWindowsJson = Type.Object({
  group: Type.String(),
  windows: Type.Array(WindowDocumentJson),
  updated_by: Nullable(Type.String()),
  updated_at: Type.String(),
});

export const TagWindowsJson = Type.Object({
  key: Type.String(),
  value: Type.String(),
  windows: Type.Array(WindowDocumentJson),
  updated_by: Nullable(Type.String()),
  updated_at: Type.String(),
});

export const GroupWindowsListReply = Type.Object({
  windows: Type.Array(GroupWindowsJson),
  next: Nullable(Type.String({ description: 'Give as `after` for the next page' })),
});

export const TagWindowsListReply = Type.Object({
  windows: Type.Array(TagWindowsJson),
  next: Nullable(Type.String({ description: 'Give as `after` (key=value) for the next page' })),
});

export const SharedWindowsListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 100' })),
  after: Type.Optional(
    Type.String({ maxLength: 330, description: 'The last group name (or key=value) of the previous page' }),
  ),
});

interface Shared {
  target: { kind: 'group'; name: string } | { kind: 'tag'; key: string; value: string };
  windows: object[];
  updatedBy: string | null;
  updatedAt: number;
}

export const groupWindowsJson = (w: Shared): Static<typeof GroupWindowsJson> => ({
  group: w.target.kind === 'group' ? w.target.name : '',
  windows: w.windows as Array<Record<string, unknown>>,
  updated_by: w.updatedBy,
  updated_at: iso(w.updatedAt)!,
});

export const tagWindowsJson = (w: Shared): Static<typeof TagWindowsJson> => ({
  key: w.target.kind === 'tag' ? w.target.key : '',
  value: w.target.kind === 'tag' ? w.target.value : '',
  windows: w.windows as Array<Record<string, unknown>>,
  updated_by: w.updatedBy,
  updated_at: iso(w.updatedAt)!,
});
