import { describe, expect, it } from 'vitest';
import { MAX_TAG_VALUE, MAX_TAGS, withReportedAttributes } from './tag-edit.js';

describe('withReportedAttributes', () => {
  it('keeps tag keys only, cleans and cuts values, never adds past the limit, and sets the client', () => {
    const many = Object.fromEntries(Array.from({ length: MAX_TAGS - 1 }, (_, i) => [`k${i}`, 'v']));
    expect(
      withReportedAttributes(
        { site: 'north' },
        { 'bad key': 'x', serial: 'SN\u00011', client: 'forged' },
        'mender',
      ),
    ).toEqual({ site: 'north', serial: 'SN 1', client: 'mender' });
    expect(withReportedAttributes({}, { note: 'x'.repeat(MAX_TAG_VALUE + 9) }, 'swupdate').note).toHaveLength(
      MAX_TAG_VALUE,
    );
    const full = withReportedAttributes(many, { k0: 'changed', extra: 'no room' }, 'swupdate');
    expect(full).toMatchObject({ k0: 'changed', client: 'swupdate' });
    expect(full.extra).toBeUndefined();
    expect(Object.keys(full)).toHaveLength(MAX_TAGS);
  });
});
