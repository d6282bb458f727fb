/**
 * Which role (and scope) an OpenID Connect sign-in gets, from the groups the provider says the user is in
 * (docs/access.md, "OpenID Connect"). The mapping is a list read from a file: the first entry naming one of
 * the user's groups wins, so the file's order says which group counts when a user is in several; a user in
 * none of them is refused.
 */
import { FleetError } from './errors.js';
import { parseFilter } from './filter/index.js';

export interface OidcRoleRule {
  group: string;
  role: string;
  scope: string | null;
}

export interface OidcRoleMapping {
  /** The claim holding the user's groups (a list of strings, or one string). */
  groupsClaim: string;
  /** The claim naming the user (falls back to `email`, then `sub`). */
  nameClaim: string;
  rules: OidcRoleRule[];
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;

/** Checks a parsed mapping file; every mistake is named with where it is. */
export function parseOidcRoleMapping(doc: unknown, source: string): OidcRoleMapping {
  const bad = (what: string) => new FleetError('VALIDATION', `${source}: ${what}`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw bad('expected an object with "mappings"');
  const d = doc as Record<string, unknown>;
  const known = new Set(['groups_claim', 'name_claim', 'mappings']);
  const unknown = Object.keys(d).filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw bad(`unknown key(s) ${unknown.join(', ')}; known are ${[...known].join(', ')}`);
  for (const key of ['groups_claim', 'name_claim'] as const) {
    if (d[key] !== undefined && !isText(d[key])) throw bad(`${key} must be a claim name`);
  }
  if (!Array.isArray(d.mappings) || d.mappings.length === 0)
    throw bad('mappings: a list of {group, role, scope?}');
  const rules = d.mappings.map((m: unknown, i: number): OidcRoleRule => {
    const at = `mappings[${i}]`;
    if (typeof m !== 'object' || m === null) throw bad(`${at}: expected {group, role, scope?}`);
    const { group, role, scope, ...rest } = m as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw bad(`${at}: unknown key(s) ${Object.keys(rest).join(', ')}`);
    if (!isText(group)) throw bad(`${at}.group: a group name`);
    if (!isText(role)) throw bad(`${at}.role: a built-in or custom role`);
    if (scope !== undefined && !isText(scope)) throw bad(`${at}.scope: a filter expression`);
    if (scope !== undefined) parseFilter(scope);
    return { group, role, scope: scope ?? null };
  });
  return {
    groupsClaim: (d.groups_claim as string | undefined) ?? 'groups',
    nameClaim: (d.name_claim as string | undefined) ?? 'preferred_username',
    rules,
  };
}

/** The user's name and the rule their groups select, or null when no rule names one of their groups. */
export function mapOidcClaims(
  mapping: OidcRoleMapping,
  claims: Record<string, unknown>,
): { name: string; groups: string[]; rule: OidcRoleRule | null } {
  const raw = claims[mapping.groupsClaim];
  const groups = (Array.isArray(raw) ? raw : [raw]).filter((g): g is string => typeof g === 'string');
  const name = [claims[mapping.nameClaim], claims.email, claims.sub].find(isText) ?? 'unknown';
  return { name, groups, rule: mapping.rules.find((r) => groups.includes(r.group)) ?? null };
}
