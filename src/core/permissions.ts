/**
 * Operator permissions and the built-in roles made of them. A role is a set of named permissions; the server
 * checks the one a route declares (server/access.ts), so what a role may do is read here and nowhere else.
 */
import { FleetError } from './errors.js';

export const PERMISSIONS = [
  'devices.read',
  'devices.write',
  'commands.run',
  'rollouts.read',
  'rollouts.create',
  'rollouts.control',
  'releases.read',
  'releases.write',
  'releases.approve',
  'events.read',
  'enrollment.write',
  'webhooks.read',
  'webhooks.write',
  'pki.write',
  'keys.write',
  'metrics.read',
  'audit.read',
  'admin.users',
  'admin.tokens',
  'admin.roles',
  'groups.read',
  'groups.write',
  'windows.read',
  'windows.write',
  'config.read',
  'config.write',
  'connectivity.read',
  'connectivity.write',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

const KNOWN = new Set<string>(PERMISSIONS);

export function isPermission(name: string): name is Permission {
  return KNOWN.has(name);
}

const READ: Permission[] = [
  'devices.read',
  'rollouts.read',
  'releases.read',
  'events.read',
  'webhooks.read',
  'metrics.read',
  'groups.read',
  'windows.read',
  'config.read',
  'connectivity.read',
];

/** The roles every server has; custom roles may not take their names. */
export const BUILT_IN_ROLES: Readonly<Record<string, readonly Permission[]>> = {
  viewer: READ,
  operator: [
    ...READ,
    'devices.write',
    'commands.run',
    'rollouts.create',
    'rollouts.control',
    // A device's own maintenance windows (core/rollout/device-windows.ts).
    'windows.write',
    'groups.write',
    'config.write',
  ],
  // Uploads and approves; starting rollouts is an operator's ("CI may upload but not promote" is a custom role).
  'release-manager': [...READ, 'releases.write', 'releases.approve'],
  admin: PERMISSIONS,
};

export const isBuiltInRole = (name: string) => Object.hasOwn(BUILT_IN_ROLES, name);

const ROLE_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/** Checks a custom role before it is stored: a fresh name of its own and known permissions only. */
export function checkCustomRole(name: string, permissions: readonly string[]): Permission[] {
  if (!ROLE_NAME.test(name)) {
    throw new FleetError(
      'VALIDATION',
      `name: "${name}" must be 1-40 lowercase letters, digits or dashes, starting with a letter`,
    );
  }
  if (isBuiltInRole(name)) {
    throw new FleetError('CONFLICT', `${name} is a built-in role; choose another name`);
  }
  if (permissions.length === 0) {
    throw new FleetError('VALIDATION', 'permissions: a role needs at least one permission');
  }
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length > 0) {
    throw new FleetError(
      'VALIDATION',
      `permissions: unknown ${unknown.join(', ')}; known are ${PERMISSIONS.join(', ')}`,
    );
  }
  return [...new Set(permissions as Permission[])].sort();
}
