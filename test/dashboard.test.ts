/**
 * The web dashboard in a real browser (the system's Chromium) against a real `fleetd server` process with
 * the POS example fleet plus 5,000 generated devices. Every number the pages show is checked against the
 * API. Screenshots go to test-results/dashboard/.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, screenshot } from './support/browser.js';
import { type Operator, operator } from './support/fleet.js';
import { type ServerProcess, spawnServer, tempDir } from './support/processes.js';

const POS_FLEET = JSON.parse(readFileSync(join(import.meta.dirname, '../examples/pos-fleet.json'), 'utf8'));
const GENERATED = 5000;
const digits = (text: string | null) => Number((text ?? '').replace(/[^\d]/g, ''));

/** A deterministic fleet: last_seen offsets stay clear of the 10-minute, 24-hour and 30-day thresholds. */
function generatedFleet(n: number) {
  const regions = ['northeast', 'southeast', 'midwest', 'west', 'mountain'];
  const zones = [
    'America/New_York',
    'America/Chicago',
    'America/Denver',
    'America/Los_Angeles',
    'Europe/Berlin',
  ];
  const firmware = ['1.9.0', '2.0.0', '2.1.3', '2.2.0', '2.3.0', '2.10.1'];
  const seenMinutesAgo = [1, 2, 3, 120, 3 * 1440, 45 * 1440, null];
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => {
    const ago = seenMinutesAgo[i % seenMinutesAgo.length]!;
    return {
      id: `sign-${String(i).padStart(5, '0')}`,
      name: `Signage ${i}`,
      firmware_version: firmware[(i * 5) % firmware.length],
      hardware_type: i % 3 === 0 ? 'sig-a1' : 'sig-b2',
      last_seen: ago === null ? null : new Date(now - ago * 60_000).toISOString(),
      timezone: zones[i % zones.length],
      customer: i % 2 ? 'Mall Co' : 'Transit Co',
      tags: { region: regions[i % regions.length]!, tier: i % 10 === 0 ? 'gold' : 'standard' },
    };
  });
}

let server: ServerProcess;
let op: Operator;
let browser: BrowserContext;
let page: Page;
let data: string;
/** What the browser refused under the server's Content-Security-Policy: must stay empty. */
const cspViolations: string[] = [];

const go = async (hash: string) => {
  await page.goto(`${server.url}/#/${hash}`);
};

beforeAll(async () => {
  data = tempDir();
  // One alert rule that the generated fleet's offline devices trip at the first evaluation.
  const rules = join(data, 'alerts.yml');
  writeFileSync(
    rules,
    'rules:\n  - name: fleet-offline\n    kind: offline_share\n    above_pct: 1\n    severity: critical\n    summary: Devices are dropping off the network\n',
  );
  server = await spawnServer(data, [
    '--log-level',
    'warn',
    '--enrollment',
    'approve',
    '--alert-rules',
    rules,
  ]);
  op = operator(server.url, data);
  expect((await op.call('POST', '/api/v1/devices/import', POS_FLEET)).status).toBe(200);
  const big = await op.call('POST', '/api/v1/devices/import', { devices: generatedFleet(GENERATED) });
  expect(big.body).toEqual({ created: GENERATED, updated: 0 });
  await op.upload('name=pos-fw&version=2.4.0&hardware=pos-x200&type=firmware', Buffer.from('firmware 2.4.0'));
  const assigned = await op.call<{ assigned: unknown[] }>('POST', '/api/v1/updates/assign', {
    release: 'pos-fw@2.4.0',
    devices: ['pos-nyc-001'],
  });
  expect(assigned.body.assigned).toHaveLength(1);
  // The Denver terminal (never seen) heartbeats: a device.status event unknown → online for its page.
  const { body: cred } = await op.call<{ credential: string }>(
    'POST',
    '/api/v1/devices/pos-denver-001/credential',
  );
  const hb = await fetch(`${server.url}/api/device/v1/heartbeat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cred.credential}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      device_id: 'pos-denver-001',
      battery: 77,
      signal_strength: -61,
      metrics: { cpu: 12 },
    }),
  });
  expect(hb.status).toBe(200);
  // Its telemetry and inventory (docs/telemetry.md), for the charts and the inventory on its page.
  const report = await fetch(`${server.url}/api/device/v1/telemetry`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cred.credential}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      metrics: { temp_c: 48.5 },
      inventory: {
        os: 'Debian GNU/Linux 12 (bookworm)',
        kernel: '6.1.0-18-arm64',
        packages: [],
        interfaces: [],
      },
    }),
  });
  expect(report.status).toBe(200);
  browser = await launchBrowser();
  page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(15_000);
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.kill();
});

describe('dashboard', () => {
  it('is served at / next to the API, /docs and /healthz', async () => {
    const index = await fetch(`${server.url}/`);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(await index.text()).toContain('<div id="app">');
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/docs/`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/v1/devices`)).status).toBe(401);
  });

  it('refuses a wrong token and signs in with the admin token from the keyboard', async () => {
    await go('');
    await page.getByText('Sign in with an API token instead').click();
    await page.getByLabel('API token').fill('fld_admin_wrong');
    await page.keyboard.press('Enter');
    await page.getByText('This token is unknown or revoked.').waitFor();
    await screenshot(page, '00-sign-in');
    await page.getByLabel('API token').fill(op.token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Fleet overview' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('fleetd.token')")).toBe(op.token);
  });

  it('shows the overview numbers the API gives', async () => {
    const { body: stats } = await op.call<{
      total: number;
      by_status: Record<string, number>;
      silent: { over_24h: number; over_30d: number };
      firmware: Array<{ version: string; count: number }>;
    }>('GET', '/api/v1/fleet/stats');
    await go('');
    const tile = (id: string) => page.getByTestId(id);
    await expect.poll(() => tile('total').textContent()).toBe(stats.total.toLocaleString('en-US'));
    expect(stats.total).toBe(GENERATED + 10);
    // The generated fleet spreads over every status but decommissioned.
    for (const status of ['online', 'offline', 'unknown', 'abandoned'])
      expect(stats.by_status[status]).toBeGreaterThan(500);
    for (const status of ['online', 'offline', 'unknown', 'abandoned']) {
      expect(digits(await tile(`status-${status}`).textContent()), status).toBe(stats.by_status[status]);
    }
    const share = (100 * stats.by_status.online!) / (stats.total - (stats.by_status.decommissioned ?? 0));
    expect(await tile('online-share').textContent()).toBe(`${share.toFixed(1)}%`);
    expect(digits(await tile('silent-24h').textContent())).toBe(stats.silent.over_24h);
    expect(digits(await tile('silent-30d').textContent())).toBe(stats.silent.over_30d);
    // 2.10.1 is the newest by semantic version (not by text): every other device is behind it.
    const newest = stats.firmware.find((f) => f.version === '2.10.1')!.count;
    expect(await page.getByTestId('firmware-behind').textContent()).toMatch(
      new RegExp(
        `^${(stats.total - newest).toLocaleString('en-US')} devices are not on the newest version, 2\\.10\\.1`,
      ),
    );
    // The tag breakdown: region by default, any key on request.
    const { body: tiers } = await op.call<{ tags: Record<string, Record<string, number>> }>(
      'GET',
      '/api/v1/fleet/stats?tag=tier',
    );
    await page.getByLabel('Tag key').fill('tier');
    await page.getByLabel('Tag key').press('Enter');
    const gold = page.getByRole('table', { name: 'Devices by tag tier' }).getByRole('row', { name: /^gold/ });
    await expect.poll(() => gold.textContent()).toContain(tiers.tags.tier!.gold!.toLocaleString('en-US'));
    await page.getByRole('heading', { name: 'Hardware types' }).waitFor();
    await screenshot(page, '01-overview');
  });

  it('validates the filter as it is typed, counts and lists the matches, sorts and pages', async () => {
    await go('devices');
    const filter = page.getByLabel('Filter');
    await filter.fill('status=sleeping');
    await page.getByText(/column 8: unknown status 'sleeping'/).waitFor();
    expect(await filter.getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('.caret').textContent()).toBe(`${' '.repeat(7)}^`);

    const expr = 'tag.region=northeast and firmware < 2.2.0';
    const { body: count } = await op.call<{ count: number }>(
      'GET',
      `/api/v1/devices/count?filter=${encodeURIComponent(expr)}`,
    );
    expect(count.count).toBeGreaterThan(100);
    await filter.fill(expr);
    await page.getByText(`${count.count.toLocaleString('en-US')} devices match`).waitFor();
    await expect
      .poll(() => page.getByTestId('page-range').textContent())
      .toBe(`1–50 of ${count.count.toLocaleString('en-US')}`);
    const ids = () => page.locator('table.devices tbody tr td:first-child').allTextContents();
    const api = async (query: string) =>
      (
        await op.call<{ devices: Array<{ id: string }> }>(
          'GET',
          `/api/v1/devices?filter=${encodeURIComponent(expr)}&limit=50${query}`,
        )
      ).body.devices.map((d) => d.id);
    const byId = await api('');
    expect(await ids()).toEqual(byId);
    await screenshot(page, '02-devices');

    await page.getByRole('button', { name: 'Name' }).click();
    await page.getByRole('button', { name: 'Name' }).click();
    const byNameDesc = await api('&sort=name&order=desc');
    await expect.poll(ids).toEqual(byNameDesc);
    expect(await page.getByRole('columnheader', { name: /Name/ }).getAttribute('aria-sort')).toBe(
      'descending',
    );

    await page.getByRole('button', { name: 'Next →' }).click();
    await expect.poll(() => page.getByTestId('page-range').textContent()).toMatch(/^51–100 of/);
    const first = await op.call<{ next_cursor: string }>(
      'GET',
      `/api/v1/devices?filter=${encodeURIComponent(expr)}&limit=50&sort=name&order=desc`,
    );
    const second = await api(`&sort=name&order=desc&cursor=${encodeURIComponent(first.body.next_cursor)}`);
    await expect.poll(ids).toEqual(second);
    await page.getByRole('button', { name: '← Previous' }).click();
    await expect.poll(ids).toEqual(byNameDesc);
  });

  it('opens a device page with facts, tags, telemetry, status history and updates', async () => {
    await go('devices?filter=id%3Dpos-*');
    await page.getByRole('link', { name: 'pos-denver-001' }).click();
    await page.getByRole('heading', { name: /Denver terminal/ }).waitFor();
    expect(page.url()).toMatch(/#\/devices\/pos-denver-001$/);
    const facts = page.getByRole('region', { name: 'Facts' });
    await facts.getByText('America/Denver').waitFor();
    await page.getByRole('region', { name: 'Tags' }).getByText('DEN-001').waitFor();
    await page.getByRole('region', { name: 'Telemetry' }).getByText('77%').waitFor();
    await page.getByTestId('telemetry-temp_c').locator('svg circle').waitFor();
    await page.getByTestId('inventory').getByText('Debian GNU/Linux 12 (bookworm)').waitFor();
    const history = page.getByTestId('status-history');
    await history.getByRole('row', { name: /device\.status.*unknown → online/ }).waitFor();
    // Times in the device's own zone are labelled with it (the browser runs in New York).
    await history
      .getByRole('row', { name: /device\.status/ })
      .getByText(/M MST$/)
      .waitFor();
    await screenshot(page, '03-device');

    await go('devices/pos-nyc-001');
    const updates = page.getByTestId('updates');
    await updates.getByRole('row', { name: /pos-nyc-001.*pending.*install.*2\.1\.0/ }).waitFor();
  });

  it('shows events and adds new ones live', async () => {
    await go('events?type=enrollment.');
    await page.getByTestId('stream-state').getByText('● Live').waitFor();
    expect(await page.getByTestId('events').locator('tbody tr').count()).toBe(0);
    expect((await op.call('POST', '/api/v1/enrollment-tokens', { uses: 1 })).status).toBe(201);
    await page
      .getByTestId('events')
      .getByRole('row', { name: /enrollment\.created/ })
      .waitFor();
    // Another type does not pass the filter; clearing it shows the newest events of every type.
    await page.getByLabel('Type prefix').fill('');
    await page
      .getByTestId('events')
      .getByRole('row', { name: /device\.status.*pos-denver-001/ })
      .waitFor();
    await screenshot(page, '04-events');
  });

  it('lists the artifacts', async () => {
    const { body } = await op.call<{ artifacts: Array<{ sha256: string; size: number }> }>(
      'GET',
      '/api/v1/artifacts',
    );
    await go('artifacts');
    const row = page.getByTestId('artifacts').getByRole('row', { name: /pos-fw/ });
    await row.waitFor();
    const text = await row.textContent();
    expect(text).toContain('2.4.0');
    expect(text).toContain('firmware');
    expect(text).toContain('pos-x200');
    expect(text).toContain(`${body.artifacts[0]!.size} B`);
    expect(text).toContain(body.artifacts[0]!.sha256.slice(0, 16));
    await screenshot(page, '05-artifacts');
  });

  it('shows the alerts the rules raised, with the value the API gives, and their events', async () => {
    await go('alerts');
    const row = page.locator('[data-alert="fleet-offline"]');
    // Rules are evaluated on the engine's tick (every 15 s at most); the page refreshes on the alert's event.
    await row.getByTestId('alert-state').getByText('firing').waitFor({ timeout: 60_000 });
    const { body } = await op.call<{ alerts: Array<{ key: string; value: number; threshold: number }> }>(
      'GET',
      '/api/v1/alerts',
    );
    const alert = body.alerts.find((a) => a.key === 'fleet-offline')!;
    expect(alert.value).toBeGreaterThan(alert.threshold);
    expect(await row.getByTestId('alert-value').textContent()).toBe(String(alert.value));
    await row.getByText('Devices are dropping off the network').waitFor();
    await page
      .getByTestId('alerts-history')
      .getByRole('row', { name: /alert\.firing.*fleet-offline/ })
      .waitFor();
    await page
      .getByTestId('alert-rules')
      .getByRole('row', { name: /fleet-offline.*offline_share/ })
      .waitFor();
    await screenshot(page, '05b-alerts');
  });

  it("shows a device's configuration: desired, applied and drift", async () => {
    const set = await op.call('PUT', '/api/v1/config/denver-debug', {
      document: { log_level: 'debug' },
      device: 'pos-denver-001',
    });
    expect(set.status).toBe(200);
    const { body } = await op.call<{ config: { desired_version: string; drift: boolean } }>(
      'GET',
      '/api/v1/devices/pos-denver-001',
    );
    expect(body.config.drift).toBe(true);
    await go('devices/pos-denver-001');
    const card = page.getByRole('region', { name: 'Configuration' });
    await card.getByText(body.config.desired_version).waitFor();
    await card.getByText('none yet').waitFor();
    await card.getByTestId('config-drift').getByText('drift').waitFor();
  });

  it('shows the devices waiting for approval and accepts one with a click', async () => {
    const ask = (id: string) =>
      fetch(`${server.url}/api/device/v1/enroll`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ device_id: id, request_secret: `secret-of-${id}-0123456789abcdef` }),
      });
    expect((await ask('queue-001')).status).toBe(202);
    expect((await ask('queue-002')).status).toBe(202);
    await go('devices');
    const queue = page.getByRole('region', { name: 'Waiting for approval' });
    await queue.getByRole('cell', { name: 'queue-002', exact: true }).waitFor();
    await queue.getByRole('button', { name: 'Accept queue-001' }).click();
    await queue.getByRole('cell', { name: 'queue-001', exact: true }).waitFor({ state: 'detached' });
    expect(await queue.getByRole('cell', { name: 'queue-002', exact: true }).count()).toBe(1);
    const accepted = await op.call<{ admission: string }>('GET', '/api/v1/devices/queue-001');
    expect(accepted.body.admission).toBe('accepted');
    expect((await ask('queue-001')).status).toBe(201);
    // Rejected, the last one leaves the queue, and with it the queue's card.
    await queue.getByRole('button', { name: 'Reject queue-002' }).click();
    await queue.waitFor({ state: 'detached' });
  });

  it('loads a fleet file and uploads a release from the browser, without the CLI', async () => {
    const fleetFile = join(tempDir(), 'kiosks.json');
    writeFileSync(
      fleetFile,
      JSON.stringify({
        devices: [
          { id: 'kiosk-001', hardware_type: 'kiosk-v1', firmware_version: '1.0.0', timezone: 'Europe/Paris' },
          { id: 'kiosk-002', hardware_type: 'kiosk-v1', firmware_version: '1.0.0', timezone: 'Europe/Paris' },
        ],
      }),
    );
    await go('devices');
    await page.getByText('Import devices').click();
    await page.getByLabel('Fleet file').setInputFiles(fleetFile);
    await page
      .getByTestId('import-result')
      .getByText('Imported 2 devices from kiosks.json: 2 new, 0 updated.')
      .waitFor();
    expect((await op.call<{ id: string }>('GET', '/api/v1/devices/kiosk-002')).body.id).toBe('kiosk-002');

    const bad = join(tempDir(), 'bad.json');
    writeFileSync(bad, JSON.stringify({ devices: [{ id: 'kiosk-003', timezone: 'Mars/Base' }] }));
    await page.getByLabel('Fleet file').setInputFiles(bad);
    await page.getByText(/devices\[0\]\.timezone: "Mars\/Base" is not an IANA time zone/).waitFor();

    const artifact = join(tempDir(), 'kiosk-fw.bin');
    writeFileSync(artifact, 'kiosk firmware 1.1.0\n'.repeat(500));
    await go('artifacts');
    await page.getByText('Upload a release').click();
    await page.getByLabel('File', { exact: true }).setInputFiles(artifact);
    await page.getByLabel('Name', { exact: true }).fill('kiosk-fw');
    await page.getByLabel('Version', { exact: true }).fill('1.1.0');
    await page.getByLabel('Hardware types').fill('kiosk-v1');
    await page.getByRole('button', { name: 'Upload and sign' }).click();
    await page.getByTestId('upload-result').getByText('Uploaded and signed kiosk-fw@1.1.0.').waitFor();
    await page
      .getByTestId('artifacts')
      .getByRole('row', { name: /kiosk-fw/ })
      .waitFor();
    const { body } = await op.call<{ artifacts: Array<{ name: string; size: number }> }>(
      'GET',
      '/api/v1/artifacts',
    );
    expect(body.artifacts.find((a) => a.name === 'kiosk-fw')?.size).toBe(21 * 500);
  });

  it('fits a tablet screen without sideways scrolling', async () => {
    await page.setViewportSize({ width: 820, height: 1180 });
    try {
      for (const hash of ['', 'devices', 'devices/pos-nyc-001', 'events', 'artifacts']) {
        await go(hash);
        await page.locator('main h1').waitFor();
        const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - innerWidth');
        expect(overflow, `#/${hash}`).toBeLessThanOrEqual(0);
      }
      await go('');
      await page.getByTestId('total').waitFor();
      await screenshot(page, '06-overview-tablet');
    } finally {
      await page.setViewportSize({ width: 1366, height: 900 });
    }
  });
});

describe('dashboard rollouts', () => {
  it('creates a progressive rollout after its dry run, follows a phase advancing as devices report, pauses it', async () => {
    const filter = 'id=pos-* and hardware=pos-x200';
    const { body: targets } = await op.call<{ devices: Array<{ id: string }> }>(
      'GET',
      `/api/v1/devices?filter=${encodeURIComponent(filter)}&limit=100`,
    );
    await go('rollouts/new');
    await page.getByLabel('Name', { exact: true }).fill('pos-fw 2.4.0 to the POS x200');
    await page.getByLabel('Release', { exact: true }).selectOption('pos-fw@2.4.0');
    await page.getByLabel(/Target devices/).fill(filter);
    await page.getByText(`${targets.devices.length} devices match`).waitFor();
    await page.getByRole('radio', { name: /progressive/ }).check();
    // Pre-filled with the seeds' plan: 10 %/24 h/95 %, 50 %/12 h/90 %, 100 %/85 %, halt and roll back.
    const phaseValues = async (label: string) =>
      Promise.all((await page.getByLabel(label).all()).map((f) => f.inputValue()));
    expect(await phaseValues('Up to %')).toEqual(['10', '50', '100']);
    expect(await phaseValues('Soak (wait)')).toEqual(['24h', '12h', '']);
    expect(await phaseValues('Success rate ≥ %')).toEqual(['95', '90', '85']);
    expect(await page.getByLabel(/Roll back the updated devices/).isChecked()).toBe(true);
    // Two phases: a canary of a third (no soak, automatic), then everyone.
    await page.getByRole('button', { name: 'Remove phase 1' }).click();
    await page.getByLabel('Phase 1 name').fill('canary');
    await page.getByLabel('Up to %').first().fill('34');
    await page.getByLabel('Soak (wait)').first().fill('0s');
    await page.getByLabel('Success rate ≥ %').first().fill('50');
    await page.getByLabel('Approval').first().selectOption('auto');
    await page.getByLabel('Phase 2 name').fill('everyone');
    const create = page.getByRole('button', { name: 'Create rollout' });
    expect(await create.isDisabled()).toBe(true);
    await page.getByTestId('preview').click();
    await page.getByTestId('plan-targets').getByText(String(targets.devices.length)).waitFor();
    await page
      .getByTestId('plan-phases')
      .getByRole('row', { name: /canary/ })
      .waitFor();
    await page.getByTestId('plan-on-halt').getByText('halt and roll back every updated device').waitFor();
    await screenshot(page, '10-rollout-plan');
    expect(await create.isDisabled()).toBe(false);
    await create.click();
    await page.waitForURL(/#\/rollouts\/ro_[^/]+$/);
    const id = decodeURIComponent(page.url().split('/').at(-1)!);
    await page.getByTestId('stream-state').getByText('● Live').waitFor();

    // The devices report over the device API: heartbeat, then walk each offered update to succeeded.
    // Only the canaries report, so the second phase is still running when the test pauses it.
    const { body: canaries } = await op.call<{ updates: Array<{ device_id: string }> }>(
      'GET',
      `/api/v1/rollouts/${id}/updates?phase=0`,
    );
    const credentials = new Map<string, string>();
    for (const d of canaries.updates.map((u) => ({ id: u.device_id }))) {
      const { body } = await op.call<{ credential: string }>('POST', `/api/v1/devices/${d.id}/credential`);
      credentials.set(d.id, body.credential);
    }
    const flow = ['notified', 'downloading', 'installing', 'verifying', 'succeeded'];
    const seq = new Map<string, number>();
    let advanced = false;
    const devicesReport = async () => {
      while (!advanced) {
        for (const [deviceId, credential] of credentials) {
          const headers = { authorization: `Bearer ${credential}`, 'content-type': 'application/json' };
          const hb = await fetch(`${server.url}/api/device/v1/heartbeat`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ device_id: deviceId, firmware_version: '2.1.0' }),
          });
          const { pending_updates } = (await hb.json()) as {
            pending_updates: Array<{ id: string; rollout_id: string }>;
          };
          for (const u of pending_updates.filter((p) => p.rollout_id === id)) {
            for (const state of flow) {
              const n = (seq.get(u.id) ?? 0) + 1;
              seq.set(u.id, n);
              await fetch(`${server.url}/api/device/v1/updates/${u.id}/status`, {
                method: 'POST',
                headers,
                body: JSON.stringify({ seq: n, state }),
              });
            }
          }
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    const reporting = devicesReport();
    try {
      // The page follows the stream: the canary's gate passes and the second phase becomes current.
      await page.getByTestId('gate-0').getByText(/pass/i).waitFor({ timeout: 60_000 });
      await page.locator('[data-testid="phase-1"][aria-current="step"]').waitFor({ timeout: 60_000 });
    } finally {
      advanced = true;
      await reporting;
    }
    await screenshot(page, '11-rollout-live');

    // Pause, confirmed in the dialog with the keyboard alone: the focus starts on Cancel.
    await page.getByRole('button', { name: 'Pause' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Pause' }).click();
    await dialog.waitFor();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.locator('h1 .badge', { hasText: 'paused' }).waitFor();
    const { body: rollout } = await op.call<{ state: string }>('GET', `/api/v1/rollouts/${id}`);
    expect(rollout.state).toBe('paused');
    await screenshot(page, '12-rollout-paused');
  }, 180_000);
});

describe('under the Content-Security-Policy', () => {
  it('the API docs render, and no page of the dashboard or the docs broke the policy', async () => {
    await page.goto(`${server.url}/docs/`);
    await page.getByText('FleetD API').first().waitFor();
    await page.locator('.opblock').first().waitFor();
    expect(cspViolations).toEqual([]);
  });
});
