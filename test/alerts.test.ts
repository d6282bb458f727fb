/**
 * Alert rules end to end on each database: a rules file, devices heartbeating over the device API, the
 * evaluator stepped with an injected clock, and the alerts read back from the API and the event log.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { AlertEvaluator } from '../src/engine/alert-evaluator.js';
import {
  deviceCredential,
  hashSecret,
  newSecret,
  splitDeviceCredential,
} from '../src/registry/credentials.js';
import { readAlertRules } from '../src/server/alert-rules-file.js';
import { createServer, type ServerParts } from '../src/server/serve.js';
import type { SqlStore } from '../src/store/sql-store.js';
import { tempDir } from './support/processes.js';
import { forEachBackend } from './support/stores.js';

const START = Date.parse('2026-11-22T12:00:00Z');
const MIN = 60_000;

const RULES = `
rules:
  - name: east-offline
    kind: offline_share
    filter: tag.region = east
    above_pct: 30
    for: 10m
    recover_for: 5m
    severity: critical
  - name: auth-refusals
    kind: auth_failures
    above: 1
    window: 5m
`;

forEachBackend((backend) => {
  let store: SqlStore;
  let s: ServerParts;
  let clock: ManualClock;
  let admin: string;
  let rulesFile: string;
  const credentials = new Map<string, string>();

  beforeEach(async () => {
    store = await backend.open();
    clock = new ManualClock(START);
    const dataDir = tempDir();
    admin = newSecret('admin');
    await store.createApiToken(
      { id: 'tok_admin', name: 'admin', role: 'admin', createdAt: START },
      hashSecret(admin),
    );
    rulesFile = join(dataDir, 'alerts.yml');
    writeFileSync(rulesFile, RULES);
    s = await createServer({ dataDir, store, clock, logLevel: 'silent', alertRulesFile: rulesFile });
    const ctx = { now: START, thresholds: s.thresholds };
    const east = { region: 'east' };
    await store.importDevices(
      ['e1', 'e2', 'e3', 'e4'].map((id) => ({ id, tags: east, lastSeen: START })),
      ctx,
      'test',
    );
    for (const id of ['e1', 'e2', 'e3', 'e4']) {
      const credential = deviceCredential(id);
      credentials.set(id, credential);
      await store.setCredential(id, hashSecret(splitDeviceCredential(credential)!.secret), ctx, 'test');
    }
    return () => s.app.close();
  });

  const heartbeat = async (id: string, credential = credentials.get(id)!) =>
    (
      await s.app.inject({
        method: 'POST',
        url: '/api/device/v1/heartbeat',
        headers: { authorization: `Bearer ${credential}` },
        payload: { device_id: id },
      })
    ).statusCode;
  const at = async (ms: number, online: string[]) => {
    clock.advance(ms);
    for (const id of online) expect(await heartbeat(id)).toBe(200);
    await s.alerts!.evaluate();
  };
  const api = async (url: string) =>
    (await s.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${admin}` } })).json();
  const alertEvents = async () =>
    (
      (await api('/api/v1/events/recent?type=alert.')).events as Array<{
        type: string;
        at: string;
        data: { key: string };
      }>
    )
      .reverse()
      .map((e) => `${e.type}:${e.data.key}@${(Date.parse(e.at) - START) / MIN}m`);

  it('an offline share above its threshold fires after `for`, once, and resolves after `recover_for`', async () => {
    // e3 and e4 go silent: half the east devices offline once the 10-minute threshold passes.
    await at(11 * MIN, ['e1', 'e2']);
    expect((await api('/api/v1/alerts')).alerts).toMatchObject([
      { key: 'east-offline', state: 'pending', severity: 'critical', value: 50, threshold: 30 },
    ]);
    await at(9 * MIN, ['e1', 'e2']);
    expect(await alertEvents()).toEqual([]);
    await at(1 * MIN, ['e1', 'e2']);
    expect(await alertEvents()).toEqual(['alert.firing:east-offline@21m']);
    expect((await api('/api/v1/alerts?state=firing')).alerts).toHaveLength(1);

    // Another replica (a second evaluator on the same database) sees it firing and does not fire it again.
    const replica = new AlertEvaluator(store, clock, s.thresholds);
    replica.setRules(s.alerts!.listRules().slice());
    await replica.evaluate();
    expect(replica.list()).toMatchObject([{ key: 'east-offline', phase: 'firing' }]);

    // The devices come back: recovering for 5 minutes, then resolved (and only once, by either replica).
    await at(1 * MIN, ['e1', 'e2', 'e3', 'e4']);
    expect((await api('/api/v1/alerts')).alerts).toMatchObject([
      { key: 'east-offline', state: 'recovering' },
    ]);
    await at(5 * MIN, ['e1', 'e2', 'e3', 'e4']);
    await replica.evaluate();
    await at(1 * MIN, ['e1', 'e2', 'e3', 'e4']);
    expect(await alertEvents()).toEqual(['alert.firing:east-offline@21m', 'alert.resolved:east-offline@27m']);
    expect((await api('/api/v1/alerts')).alerts).toEqual([]);
    const [resolved] = (await api('/api/v1/events/recent?type=alert.resolved')).events;
    expect(resolved).toMatchObject({ actor: 'alerts', data: { rule: 'east-offline', severity: 'critical' } });
  });

  it('refused device authentications above N in the window fire, and resolve as the window passes', async () => {
    // e1's credential speaking for e2: refused, as a `device.auth_refused` event.
    const impostor = credentials.get('e1')!;
    expect(await heartbeat('e2', impostor)).toBe(403);
    await at(0, []);
    expect(await alertEvents()).toEqual([]);
    expect(await heartbeat('e2', impostor)).toBe(403);
    await at(1 * MIN, []);
    expect(await alertEvents()).toEqual(['alert.firing:auth-refusals@1m']);
    await at(5 * MIN, []);
    expect(await alertEvents()).toEqual(['alert.firing:auth-refusals@1m', 'alert.resolved:auth-refusals@6m']);
  });

  it('reloads a changed rules file, keeps the rules in force when the new one is bad, and resolves removed rules', async () => {
    await at(11 * MIN, ['e1', 'e2']);
    writeFileSync(
      rulesFile,
      'rules:\n  - name: east-offline\n    kind: offline_share\n    above_pct: nope\n',
    );
    s.alertRules!.reloadIfChanged();
    expect(s.alerts!.listRules().map((r) => r.name)).toEqual(['east-offline', 'auth-refusals']);
    writeFileSync(rulesFile, 'rules:\n  - name: halted\n    kind: rollout_halted\n    for: 0s\n');
    s.alertRules!.reloadIfChanged();
    expect((await api('/api/v1/alerts')).rules).toEqual([
      {
        name: 'halted',
        kind: 'rollout_halted',
        severity: 'warning',
        for: '0s',
        recover_for: '0s',
        summary: null,
      },
    ]);
    await at(0, []);
    expect((await api('/api/v1/alerts')).alerts).toEqual([]);
  });
});

it('reads the example rules file of the docs', () => {
  expect(readAlertRules('examples/alert-rules.yml').map((r) => r.kind)).toEqual([
    'offline_share',
    'device_silent',
    'rollout_halted',
    'phase_failure_rate',
    'auth_failures',
  ]);
});

it('refuses to start on a bad rules file, naming the field', async () => {
  const dataDir = tempDir();
  const file = join(dataDir, 'alerts.yml');
  writeFileSync(file, 'rules:\n  - name: x\n    kind: device_silent\n    silent_for: forever\n');
  await expect(
    createServer({ dataDir, db: ':memory:', logLevel: 'silent', alertRulesFile: file }),
  ).rejects.toThrow(/rules\[0\]\.silent_for/);
});
