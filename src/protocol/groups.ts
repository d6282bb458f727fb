/** Device groups' operator messages (docs/groups.md): static groups (listed ids) and dynamic ones (a saved filter). */
import { type Static, Type } from 'typebox';
import { DeviceId } from './common.js';

export const GroupName = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$',
  description: 'Group name: letters, digits, _ . - (at most 64), a letter or digit first',
});
export const GroupParams = Type.Object({ name: GroupName });

const Description = Type.String({ maxLength: 1024 });
const Filter = Type.String({ minLength: 1, maxLength: 4096, description: 'Filter expression' });

export const GroupCreateBody = Type.Object(
  {
    name: GroupName,
    description: Type.Optional(Description),
    filter: Type.Optional(Filter),
  },
  { additionalProperties: false, description: 'With a filter the group is dynamic; without one, static' },
);

export const GroupUpdateBody = Type.Object(
  { description: Type.Optional(Description), filter: Type.Optional(Filter) },
  { additionalProperties: false, description: 'What changes; the filter of a dynamic group only' },
);

export const GroupJson = Type.Object({
  name: Type.String(),
  description: Type.String(),
  kind: Type.Union([Type.Literal('static'), Type.Literal('dynamic')]),
  filter: Type.Union([Type.String(), Type.Null()]),
  member_count: Type.Integer({ description: "Devices in the group, within the caller's scope" }),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export type GroupJson = Static<typeof GroupJson>;

export const GroupList = Type.Object({ groups: Type.Array(GroupJson) });

export const GroupDetail = Type.Object({
  group: GroupJson,
  members: Type.Array(Type.String(), { description: 'The first 1,000 members in id order, within scope' }),
});

export const GroupMembersBody = Type.Object(
  { ids: Type.Array(DeviceId, { minItems: 1, maxItems: 10_000 }) },
  { additionalProperties: false },
);

export const GroupMemberResult = Type.Object({
  id: Type.String(),
  ok: Type.Boolean(),
  changed: Type.Optional(Type.Boolean()),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});

export const GroupMembersReply = Type.Object({
  results: Type.Array(GroupMemberResult),
  changed: Type.Integer({ description: 'How many memberships changed' }),
});
export type GroupMembersReplyJson = Static<typeof GroupMembersReply>;
