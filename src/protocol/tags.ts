/**
 * Tag edits' operator messages (docs/filters.md, "Editing tags"): set and remove tags on devices by id or by
 * filter, one result per device.
 */
import { type Static, Type } from 'typebox';
import { DeviceId, Tags } from './common.js';

const TagKey = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' });

const EditFields = {
  set: Type.Optional(Tags),
  remove: Type.Optional(Type.Array(TagKey, { maxItems: 64, description: 'Tag keys to remove' })),
};

export const TagEditBody = Type.Union(
  [
    Type.Object(
      { ids: Type.Array(DeviceId, { minItems: 1, maxItems: 10_000 }), ...EditFields },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        filter: Type.String({ minLength: 1, maxLength: 4096, description: 'Filter expression' }),
        ...EditFields,
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'Device ids or a filter (at most 10,000 devices), and the tags to set and to remove' },
);
export type TagEditBodyJson = Static<typeof TagEditBody>;

export const TagResultJson = Type.Object({
  id: Type.String(),
  ok: Type.Boolean(),
  tags: Type.Optional(Tags),
  changed: Type.Optional(Type.Boolean()),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});

export const TagEditReply = Type.Object({
  results: Type.Array(TagResultJson),
  changed: Type.Integer({ description: 'How many devices had their tags changed' }),
});
export type TagEditReplyJson = Static<typeof TagEditReply>;
