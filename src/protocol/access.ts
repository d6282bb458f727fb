/** The operator API's users, API tokens, roles and whoami: their JSON as the API and the CLI read it. Never a secret. */
import { type Static, Type } from 'typebox';
import { DURATION_LIMITS } from '../core/duration.js';
import { DurationText, Nullable } from './common.js';

const Name = (description: string) =>
  Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$', description });
const RoleName = Type.String({ minLength: 1, maxLength: 40, description: 'A built-in or custom role' });
const Scope = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'A filter expression: the principal sees and acts on the matching devices only',
});

export const AddUserBody = Type.Object(
  {
    name: Name('Sign-in name: letters, digits, . _ @ -, at most 64'),
    password: Type.String({ minLength: 12, maxLength: 1024, description: 'At least 12 characters' }),
    role: RoleName,
    scope: Type.Optional(Scope),
  },
  { additionalProperties: false },
);

export const UserJson = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Type.String(),
  scope: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  disabled_at: Nullable(Type.String({ format: 'date-time' })),
});

export const UserParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });

export const CreateTokenBody = Type.Object(
  {
    name: Name('What the token is for, e.g. ci-release'),
    role: RoleName,
    scope: Type.Optional(Scope),
    expires_in: Type.Optional(
      DurationText('Lifetime, e.g. 90d; none: no expiry', DURATION_LIMITS.tokenExpiry),
    ),
  },
  { additionalProperties: false },
);

export const TokenJson = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Type.String(),
  scope: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
  last_used_at: Nullable(Type.String({ format: 'date-time' })),
  revoked_at: Nullable(Type.String({ format: 'date-time' })),
  created_by: Nullable(Type.String()),
});

export const TokenCreatedJson = Type.Intersect([
  TokenJson,
  Type.Object({ token: Type.String({ description: 'The secret: shown this once, stored only as a hash' }) }),
]);

export const TokenParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const AddRoleBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 40, description: 'Lowercase letters, digits and dashes' }),
    permissions: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 64 }),
  },
  { additionalProperties: false },
);

export const RoleJson = Type.Object({
  name: Type.String(),
  built_in: Type.Boolean(),
  permissions: Type.Array(Type.String()),
});

export const RoleParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 40 }) });

export const WhoamiJson = Type.Object({
  /** `token`: an API token; `session`: a user signed in to the dashboard. */
  kind: Type.Union([Type.Literal('token'), Type.Literal('session')]),
  id: Type.String(),
  name: Type.String(),
  role: Type.String(),
  permissions: Type.Array(Type.String()),
  scope: Nullable(Type.String()),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
});

export type UserJsonType = Static<typeof UserJson>;
export type TokenJsonType = Static<typeof TokenJson>;

/** Dashboard sign-in with a user's name and password (docs/access.md, "Dashboard sign-in"). */
export const SignInBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

/** The signed-in principal, and the token a change made with the session cookie must carry (X-CSRF-Token). */
export const SessionJson = Type.Object({
  principal: WhoamiJson,
  csrf_token: Nullable(Type.String({ description: 'null when the caller used an API token' })),
});

export type SessionJsonType = Static<typeof SessionJson>;
