import { describe, expect, it } from 'vitest';
import { clientLimits } from './client-limits.js';

describe('client limits', () => {
  it('names nothing for a FleetD agent or a rollout the client can follow', () => {
    expect(clientLimits(undefined, { strategy: 'blue_green', action: 'soft' }, 'firmware')).toEqual([]);
    expect(clientLimits('mender', { strategy: 'progressive', action: 'forced' }, 'mender')).toEqual([]);
    expect(clientLimits('swupdate', { strategy: 'immediate', action: 'forced' }, 'swu')).toEqual([]);
  });

  it('names a soft update, a staging step and a release of the wrong type', () => {
    const limits = clientLimits('mender', { strategy: 'blue_green', action: 'soft' }, 'swu');
    expect(limits).toHaveLength(3);
    expect(limits.join('\n')).toMatch(/only Mender artifacts .*\(type swu\) will fail/);
    expect(limits.join('\n')).toMatch(/cannot stage/);
    expect(limits.join('\n')).toMatch(/no consent step/);
    expect(clientLimits('swupdate', { strategy: 'immediate', action: 'forced' }, 'mender')[0]).toMatch(
      /^SWUpdate installs only \.swu/,
    );
  });
});
