import { describe, expect, it } from 'vitest';
import { feedbackMeaning } from './ddi-feedback.js';

const proceeding = (detail: string) => ({ execution: 'proceeding', finished: 'none', details: [detail] });

describe('DDI feedback meaning', () => {
  it('follows SWUpdate through an install to installed-awaiting-confirmation', () => {
    expect(feedbackMeaning(proceeding('Installing Update Chunk Artifacts.')).state).toBe('downloading');
    expect(feedbackMeaning(proceeding('[install_raw_file] : Installing file')).state).toBe('downloading');
    expect(feedbackMeaning(proceeding('Installed Chunk.')).state).toBe('installing');
    expect(feedbackMeaning(proceeding('All Chunks Installed.')).state).toBe('verifying');
  });

  it('ends only on closed: success succeeds, failure fails with the details', () => {
    expect(
      feedbackMeaning({ execution: 'closed', finished: 'success', details: ['Update Installed.'] }),
    ).toEqual({
      state: 'succeeded',
    });
    expect(
      feedbackMeaning({
        execution: 'closed',
        finished: 'failure',
        details: ['No suitable .swu image found'],
      }),
    ).toEqual({ state: 'failed', error: 'No suitable .swu image found' });
  });

  it('a skipped update is no success', () => {
    expect(
      feedbackMeaning({ execution: 'closed', finished: 'success', details: ['Skipped Update.'] }).state,
    ).toBe('failed');
  });
});
