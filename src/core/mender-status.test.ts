import { describe, expect, it } from 'vitest';
import { menderStatusMeaning } from './mender-status.js';

describe('mender-client status', () => {
  it('maps each status the client sends onto an update state', () => {
    expect(menderStatusMeaning('downloading').state).toBe('downloading');
    expect(menderStatusMeaning('installing').state).toBe('installing');
    expect(menderStatusMeaning('rebooting').state).toBe('installing');
    expect(menderStatusMeaning('success').state).toBe('succeeded');
    expect(menderStatusMeaning('already-installed').state).toBe('succeeded');
    expect(menderStatusMeaning('failure')).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(/failure/),
    });
  });

  it('moves nothing on a pause of a control map or an unknown status', () => {
    expect(menderStatusMeaning('pause_before_installing')).toEqual({});
    expect(menderStatusMeaning('bogus')).toEqual({});
  });
});
