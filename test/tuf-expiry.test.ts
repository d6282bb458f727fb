/**
 * TUF expiry warnings on a running server: as the clock nears the offline root's expiry, a `tuf.expiring`
 * event (once) and a `tuf_expiry` alert for root; the online roles, re-signed on time, raise neither.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initRoot } from '../src/artifacts/tuf/tuf-root.js';
import { ManualClock } from '../src/core/clock.js';
import { tempDir } from './support/processes.js';
import { installDirector, startTufServer, type TufServer, tufDataFolder, tufServer } from './support/tuf.js';

const DAY = 86_400_000;

let t: TufServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('TUF expiry warnings', () => {
  it('warns of the root a month before it expires, as an event once and as an alert', async () => {
    const rules = join(tempDir('fleetd-tuf-alerts-'), 'alerts.yaml');
    writeFileSync(
      rules,
      'rules:\n  - name: tuf\n    kind: tuf_expiry\n    within: 30d\n    severity: critical\n',
    );
    t = await tufServer({ start: Date.now(), alertRulesFile: rules });
    const events = async (prefix: string) => t!.server.store.listEvents({ typePrefix: prefix, limit: 100 });

    await t.server.tuf!.tick();
    await t.server.alerts!.evaluate();
    expect(await events('tuf.')).toEqual([]);
    expect(await events('alert.')).toEqual([]);

    // The root (365 days) has 25 days left; the online roles are re-signed as they come due.
    t.clock.advance(340 * DAY);
    expect(await t.server.tuf!.tick()).toBe(true);
    await t.server.tuf!.tick();
    const warned = await events('tuf.');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ type: 'tuf.expiring', data: { role: 'root' } });
    expect(warned[0]!.reason).toMatch(
      /the TUF root expires in 2[45] days: its holders sign the next root offline/,
    );

    await t.server.alerts!.evaluate();
    const firing = await events('alert.firing');
    expect(firing.map((e) => e.data.key)).toEqual(['tuf/root']);
    expect(firing[0]!.reason).toMatch(/TUF root metadata expires in 2[45](\.\d+)? days \(within 30 days\)/);
  });

  it("warns of the director's root like the image repository's, as an alert", async () => {
    const rules = join(tempDir('fleetd-tuf-alerts-'), 'alerts.yaml');
    writeFileSync(rules, 'rules:\n  - name: tuf\n    kind: tuf_expiry\n    within: 30d\n');
    const now = Date.now();
    const images = await initRoot({ out: tempDir('fleetd-tuf-offline-'), threshold: 1, keys: 1, now });
    const dataDir = tufDataFolder(images);
    await installDirector(dataDir, now);
    t = await startTufServer(dataDir, images, new ManualClock(now), { alertRulesFile: rules });
    await t.server.alerts!.evaluate();
    expect(await t.server.store.listEvents({ typePrefix: 'alert.', limit: 10 })).toEqual([]);

    // Both roots (365 days) have 25 days left.
    t.clock.advance(340 * DAY);
    await t.server.tuf!.tick();
    await t.server.alerts!.evaluate();
    const firing = await t.server.store.listEvents({ typePrefix: 'alert.firing', limit: 10 });
    expect(firing.map((e) => e.data.key).sort()).toEqual(['tuf/director-root', 'tuf/root']);
  });
});
