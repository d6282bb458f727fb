/**
 * The store's part of operator access (store/shared/principals.ts): users, API tokens with their role, scope,
 * expiry and last use, and custom roles. Secrets are stored as hashes only; a listing never shows one.
 */

/** An operator account. The password hash is a self-describing argon2id string; listings leave it out. */
export interface User {
  id: string;
  name: string;
  role: string;
  /** A filter expression (the filter language) limiting the devices the user sees; null: every device. */
  scope: string | null;
  createdAt: number;
  disabledAt: number | null;
}

export interface NewUser extends Omit<User, 'disabledAt'> {
  passwordHash: string;
}

/** An API token as listings and the authentication hook see it: never its secret or hash. */
export interface TokenInfo {
  id: string;
  name: string;
  role: string;
  scope: string | null;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** Who made it (`api:<name>`, `user:<name>`, `local:…`). */
  createdBy: string | null;
}

export type NewToken = Omit<TokenInfo, 'lastUsedAt' | 'revokedAt'>;

/** A custom role: a named set of permissions (checked against core/permissions.ts before it is stored). */
export interface CustomRole {
  name: string;
  permissions: string[];
  createdAt: number;
}

export interface PrincipalStore {
  /** Adds a user with its event (CONFLICT when the name is taken). */
  addUser(user: NewUser, actor: string): Promise<User>;
  listUsers(): Promise<User[]>;
  /** A user and its password hash, for sign-in; disabled users included (the caller refuses them). */
  findUser(name: string): Promise<(User & { passwordHash: string }) | undefined>;
  /** Disables a user (NOT_FOUND, CONFLICT when already disabled); its name stays taken. */
  disableUser(name: string, at: number, actor: string): Promise<User>;

  /** Stores a token by the hash of its secret, with its event; the secret itself is never given to the store. */
  addToken(token: NewToken, tokenHash: string, actor: string): Promise<TokenInfo>;
  /** Every token, newest first, revoked and expired ones included. */
  listTokens(): Promise<TokenInfo[]>;
  /** The live (unrevoked) token with this hash; the caller checks its expiry against its clock. */
  findToken(tokenHash: string): Promise<TokenInfo | undefined>;
  /** Revokes a token (NOT_FOUND when unknown, CONFLICT when already revoked). */
  revokeToken(id: string, at: number, actor: string): Promise<TokenInfo>;
  /** Records a use; written at most once per `granularityMs` per token so a busy token costs no write each call. */
  touchToken(id: string, at: number, granularityMs: number): Promise<void>;

  addRole(role: CustomRole, actor: string): Promise<CustomRole>;
  listRoles(): Promise<CustomRole[]>;
  findRole(name: string): Promise<CustomRole | undefined>;
  /** Deletes a custom role (NOT_FOUND; CONFLICT while a live token or enabled user holds it). */
  deleteRole(name: string, at: number, actor: string): Promise<void>;
}
