import { describe, expect, it } from 'vitest';
import { fileForClient, variantProblem } from './release-variants.js';

const swu = { client: 'swupdate', sha256: 'a'.repeat(64) };
const mender = { client: 'mender', sha256: 'b'.repeat(64) };
const app = { name: 'app', version: '2.0.0', type: 'file' };

describe('release variants', () => {
  it('gives a FleetD agent the release itself, whatever variants it carries', () => {
    expect(fileForClient(undefined, app, [swu, mender])).toEqual({ kind: 'release' });
    expect(fileForClient('fleetd', app, [swu])).toEqual({ kind: 'release' });
  });

  it("gives each client its own variant, and the release itself when it is that client's type", () => {
    expect(fileForClient('swupdate', app, [mender, swu])).toEqual({ kind: 'variant', variant: swu });
    expect(fileForClient('mender', app, [swu, mender])).toEqual({ kind: 'variant', variant: mender });
    expect(fileForClient('swupdate', { ...app, type: 'swu' }, [mender])).toEqual({ kind: 'release' });
    expect(fileForClient('mender', { ...app, type: 'mender' }, [])).toEqual({ kind: 'release' });
  });

  it('fails a client the release has no variant for, saying how to add one', () => {
    const choice = fileForClient('mender', app, [swu]);
    expect(choice.kind).toBe('missing');
    expect(choice.kind === 'missing' && choice.reason).toBe(
      'release app@2.0.0 (type file) has no mender variant: mender-client installs only a Mender artifact ' +
        '(add one with: fleetd artifact add-variant app@2.0.0 mender FILE)',
    );
    expect(fileForClient('swupdate', { ...app, type: 'mender' }, []).kind).toBe('missing');
  });

  it('refuses a variant of an unknown client or of the type the release already is', () => {
    expect(variantProblem('swupdate', 'file')).toBeUndefined();
    expect(variantProblem('mender', 'swu')).toBeUndefined();
    expect(variantProblem('rauc', 'file')).toMatch(/client "rauc" has no variants/);
    expect(variantProblem('swupdate', 'swu')).toMatch(/itself of type swu/);
    expect(variantProblem('mender', 'mender')).toMatch(/itself of type mender/);
  });
});
