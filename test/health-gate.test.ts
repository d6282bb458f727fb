/**
 * The health gate on the real engine and store (VirtualFleet: API, store and engine on a fake clock), on each
 * database: a canary whose devices install fine and then go dark, fall back to the previous version or crash
 * more than the devices not yet updated halts and rolls back; a healthy canary opens the next phase only once
 * every device's soak window is over and its heartbeat reported the new version.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { VirtualFleet } from '../src/sim/virtual-fleet.js';
import { create, HOUR, MINUTE, show, syntheticFleet } from './support/rollouts.js';
import { forEachDatabase } from './support/stores.js';

let fleet: VirtualFleet | undefined;
afterEach(async () => {
  await fleet?.parts.deltas?.idle(); // the rollout's delta is built in the background: let it land first
  await fleet?.close();
  fleet = undefined;
});

async function canaryFleet(db: string | undefined, health: Record<string, unknown>) {
  const f = await VirtualFleet.create({ start: Date.parse('2026-01-05T12:00:00Z'), db });
  fleet = f;
  await f.importFleet(syntheticFleet(20));
  await f.release('fw', '1.0.0', ['hw-a']);
  await f.release('fw', '2.0.0', ['hw-a']);
  for (const d of f.devices.values()) await d.heartbeat();
  f.setOutcome(() => ({ kind: 'succeed' }));
  const r = await create(f, {
    name: 'canary',
    release: 'fw@2.0.0',
    filter: '',
    strategy: 'progressive',
    phases: [
      { name: 'canary', percentage: 50, success_rate: 90, health },
      { name: 'rest', percentage: 100 },
    ],
    retry: { attempts: 1 },
  });
  const canary = (
    await f.api<{ updates: Array<{ device_id: string }> }>('GET', `/api/v1/rollouts/${r.id}/updates?phase=0`)
  ).updates.map((u) => u.device_id);
  await f.connect(canary);
  const rest = [...f.devices.keys()].filter((id) => !canary.includes(id));
  return { f, r, canary, rest };
}

/** Puts `ids` in a connectivity class asked to heartbeat hourly and offline after 3 h (docs/connectivity.md). */
async function hourlyClass(f: VirtualFleet, ids: string[]): Promise<void> {
  await f.api('POST', '/api/v1/groups', { name: 'hourly' });
  await f.api('POST', '/api/v1/groups/hourly/add', { ids });
  const set = await f.parts.app.inject({
    method: 'PUT',
    url: '/api/v1/connectivity-classes/hourly',
    headers: { authorization: `Bearer ${f.adminToken}` },
    payload: {
      match: { group: 'hourly' },
      heartbeat_interval: '1h',
      offline_after: '3h',
      abandoned_after: '30d',
    },
  });
  expect(set.statusCode, set.body).toBe(201);
}

/** Heartbeats from `ids` every 20 minutes for `ms`, ticking the engine after each round. */
async function live(f: VirtualFleet, ids: string[], ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 20 * MINUTE) {
    f.advance(20 * MINUTE);
    for (const id of ids) await f.device(id).heartbeat();
    await f.tick();
  }
}

forEachDatabase((database) => {
  let db: string | undefined;
  beforeEach(async () => {
    db = await database.fresh();
  });

  it('a healthy canary waits for every soak window and the new version in a heartbeat, then passes', async () => {
    const { f, r, canary, rest } = await canaryFleet(db, { soak: '2h', dark_after: '30m' });
    await f.tick();
    // Installed, but no heartbeat has reported 2.0.0 yet: not finished, the gate waits.
    expect((await show(f, r.id)).current_phase).toBe(0);
    await live(f, [...canary, ...rest], HOUR + 40 * MINUTE);
    expect((await show(f, r.id)).current_phase).toBe(0);
    await live(f, [...canary, ...rest], 40 * MINUTE);
    const after = await show(f, r.id);
    expect(after.state).toBe('running');
    expect(after.current_phase).toBe(1);
  });

  it('devices that go dark or fall back after a fine install halt the canary and roll it back, with the reasons', async () => {
    const { f, r, canary, rest } = await canaryFleet(db, { soak: '2h', dark_after: '30m' });
    const [dark1, dark2, fallback, ...healthy] = canary;
    f.device(fallback!).firmware = '1.0.0'; // the A/B fallback: the old slot booted, silently
    await live(f, [...healthy, fallback!, ...rest], 20 * MINUTE);
    expect((await show(f, r.id)).state).toBe('running'); // the two silent ones are not dark yet
    await live(f, [...healthy, fallback!, ...rest], 20 * MINUTE);
    const halted = await show(f, r.id);
    expect(halted.state).toBe('rolled_back');
    expect(halted.reason).toContain('2 went dark after updating');
    expect(halted.reason).toContain('1 fell back to another version after updating');
    expect([dark1, dark2]).toHaveLength(2);
  });

  it('a canary crashing more often than the devices not yet updated halts once judged', async () => {
    const { f, r, canary, rest } = await canaryFleet(db, { soak: '1h', crash_rate_margin: 10 });
    for (const id of canary.slice(0, 3)) f.device(id).health = { reboots: 0, app_crashes: 2 };
    for (const id of [...canary.slice(3), ...rest]) f.device(id).health = { reboots: 0, app_crashes: 0 };
    f.device(rest[0]!).health = { reboots: 0, app_crashes: 1 }; // 10 % of the control group crash too
    await live(f, [...canary, ...rest], 40 * MINUTE);
    expect((await show(f, r.id)).state).toBe('running'); // still soaking
    await live(f, [...canary, ...rest], 40 * MINUTE);
    const halted = await show(f, r.id);
    expect(halted.state).toBe('rolled_back');
    expect(halted.reason).toBe(
      "canary: crash rate 30% of updated devices is above the control group's 10% by more than 10 points",
    );
  });

  it('app crashes over the limit count as failures', async () => {
    const { f, r, canary, rest } = await canaryFleet(db, { soak: '1h', max_app_crashes: 3 });
    for (const id of canary.slice(0, 2)) f.device(id).health = { app_crashes: 4 };
    await live(f, [...canary, ...rest], 20 * MINUTE);
    const halted = await show(f, r.id);
    expect(halted.state).toBe('rolled_back');
    expect(halted.reason).toContain('2 rebooted or crashed over the limit');
  });
  it("without dark_after, a device is dark by its connectivity class's offline threshold, else the server's", async () => {
    const { f, r, canary, rest } = await canaryFleet(db, { soak: '2h' });
    // Three canaries wake hourly (their class: offline after 3 h); the next two, in no class, fall silent too.
    const hourly = canary.slice(0, 3);
    const awake = canary.slice(5);
    await hourlyClass(f, hourly);
    f.advance(MINUTE);
    for (const id of [...canary, ...rest]) await f.device(id).heartbeat(); // each confirms the new version
    await live(f, [...awake, ...rest], 20 * MINUTE);
    const halted = await show(f, r.id);
    expect(halted.state).toBe('rolled_back');
    // 20 min of silence: over the server's 10 min, well within the class's 3 h.
    expect(halted.reason).toContain('2 went dark after updating');
  });

  it('hourly canaries in their class soak without going dark, and the phase passes', async () => {
    const { f, r, canary, rest } = await canaryFleet(db, { soak: '2h' });
    const hourly = canary.slice(0, 4);
    await hourlyClass(f, hourly);
    f.advance(MINUTE);
    for (const id of [...canary, ...rest]) await f.device(id).heartbeat();
    const others = [...canary.slice(4), ...rest];
    for (let hour = 0; hour < 2; hour++) {
      await live(f, others, 40 * MINUTE); // the hourly ones silent 40 min, then 20 more, then heartbeat
      expect((await show(f, r.id)).state).toBe('running');
      await live(f, others, 20 * MINUTE);
      for (const id of hourly) await f.device(id).heartbeat();
    }
    await live(f, [...hourly, ...others], 20 * MINUTE);
    const after = await show(f, r.id);
    expect(after.state).toBe('running');
    expect(after.current_phase).toBe(1);
  });

  it("an explicit dark_after wins over the device's class", async () => {
    const { f, r, canary, rest } = await canaryFleet(db, { soak: '2h', dark_after: '30m' });
    const hourly = canary.slice(0, 3);
    await hourlyClass(f, hourly);
    f.advance(MINUTE);
    for (const id of [...canary, ...rest]) await f.device(id).heartbeat();
    await live(f, [...canary.slice(3), ...rest], 40 * MINUTE);
    const halted = await show(f, r.id);
    expect(halted.state).toBe('rolled_back');
    expect(halted.reason).toContain('3 went dark after updating');
  });
});
