import { describe, expect, it } from 'vitest';
import { BUILT_IN_ROLES, checkCustomRole, PERMISSIONS } from './permissions.js';

describe('roles', () => {
  it('admin holds every permission; viewer only reads; the others sit between', () => {
    expect(new Set(BUILT_IN_ROLES.admin)).toEqual(new Set(PERMISSIONS));
    for (const p of BUILT_IN_ROLES.viewer!) expect(p).toMatch(/\.read$/);
    for (const role of ['operator', 'release-manager']) {
      for (const p of BUILT_IN_ROLES.viewer!) expect(BUILT_IN_ROLES[role]).toContain(p);
    }
    expect(BUILT_IN_ROLES.operator).not.toContain('releases.approve');
    expect(BUILT_IN_ROLES['release-manager']).not.toContain('rollouts.create');
  });

  it('a custom role has a fresh name and known permissions, kept sorted and once each', () => {
    expect(checkCustomRole('canary-ci', ['rollouts.create', 'releases.write', 'rollouts.create'])).toEqual([
      'releases.write',
      'rollouts.create',
    ]);
    expect(() => checkCustomRole('admin', ['devices.read'])).toThrow(/built-in/);
    expect(() => checkCustomRole('Bad Name', ['devices.read'])).toThrow(/lowercase/);
    expect(() => checkCustomRole('x', [])).toThrow(/at least one/);
    expect(() => checkCustomRole('x', ['devices.read', 'devices.explode'])).toThrow(
      /unknown devices.explode/,
    );
  });
});
