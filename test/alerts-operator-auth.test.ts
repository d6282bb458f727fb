/**
 * The `operator_auth_failures` alert on each database: bad API tokens and device credentials sent to the app
 * in-process, failed authentication recorded in the audit log (in bounded amounts), and the evaluator stepped
 * with the injected clock. Only the operator API's failures count, the summarised ones included.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { hashSecret, newSecret } from '../src/registry/credentials.js';
import { createServer } from '../src/server/serve.js';
import { tempDir } from './support/processes.js';
import { forEachBackend } from './support/stores.js';

const START = Date.parse('2026-11-22T12:00:00Z');
const MIN = 60_000;

const RULES = `
rules:
  - name: operator-auth
    kind: operator_auth_failures
    above: 3
    window: 5m
    severity: critical
`;

forEachBackend((backend) => {
  it('fires when failed operator authentications in the window exceed the threshold, and resolves as it passes', async () => {
    const store = await backend.open();
    const clock = new ManualClock(START);
    const dataDir = tempDir();
    const admin = newSecret('admin');
    await store.createApiToken(
      { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: START },
      hashSecret(admin),
    );
    const rulesFile = join(dataDir, 'alerts.yml');
    writeFileSync(rulesFile, RULES);
    const s = await createServer({ dataDir, store, clock, logLevel: 'silent', alertRulesFile: rulesFile });
    try {
      const badToken = async () =>
        (
          await s.app.inject({
            method: 'GET',
            url: '/api/v1/devices',
            headers: { authorization: 'Bearer fld_api_not-a-token' },
          })
        ).statusCode;
      const badDevice = async () =>
        (
          await s.app.inject({
            method: 'POST',
            url: '/api/device/v1/heartbeat',
            headers: { authorization: 'Bearer fld_dev_nobody.not-a-secret' },
            payload: { device_id: 'nobody' },
          })
        ).statusCode;
      const state = async () => {
        await s.alerts!.evaluate();
        return s.alerts!.list().map((a) => `${a.key}:${a.phase}:${a.value}`);
      };
      const alertEvents = async () =>
        (await store.listEvents({ typePrefix: 'alert.', limit: 100 })).map(
          (e) => `${e.type}@${(e.at - START) / MIN}m:${e.data.value}`,
        );

      expect(await state()).toEqual([]);
      for (let i = 0; i < 3; i++) expect(await badToken()).toBe(401);
      // Three is not above three; refused device credentials are not operators' and do not count.
      for (let i = 0; i < 2; i++) expect(await badDevice()).toBe(401);
      expect(await state()).toEqual([]);
      // The sixth failure of the source's minute is only counted, and audited when the minute closes.
      expect(await badToken()).toBe(401);
      expect(await state()).toEqual([]);
      clock.advance(MIN);
      await s.app.authFailures.flush();
      expect(await state()).toEqual(['operator-auth:firing:4']);
      expect(await alertEvents()).toEqual(['alert.firing@1m:4']);

      // Five minutes on, only the summarised failure is in the window: the alert resolves.
      clock.advance(4 * MIN);
      expect(await state()).toEqual(['operator-auth:firing:4']);
      clock.advance(MIN);
      expect(await state()).toEqual([]);
      expect(await alertEvents()).toEqual(['alert.firing@1m:4', 'alert.resolved@6m:1']);
    } finally {
      await s.app.close();
    }
  });
});
