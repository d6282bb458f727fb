import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { afterExit } from '../src/agent/supervisor/crash-policy.js';
import { RotatingLog } from '../src/agent/supervisor/rotating-log.js';
import { type AppStatus, Supervisor } from '../src/agent/supervisor/supervisor.js';
import { ManualClock } from '../src/core/clock.js';
import { eventually } from './support/eventually.js';

const policy = { windowMs: 60_000, maxCrashes: 3, baseDelayMs: 1_000, maxDelayMs: 30_000 };
let supervisor: Supervisor | undefined;
afterEach(() => supervisor?.stopAll());

describe('crash policy', () => {
  it('doubles the delay with each crash in the window, then calls a crash loop; old crashes drop out', () => {
    let crashes: number[] = [];
    const at = (t: number) => {
      const r = afterExit(crashes, t, policy);
      crashes = r.crashes;
      return r.decision;
    };
    expect(at(0)).toEqual({ action: 'restart', delayMs: 1_000 });
    expect(at(2_000)).toEqual({ action: 'restart', delayMs: 2_000 });
    expect(at(100_000)).toEqual({ action: 'restart', delayMs: 1_000 }); // the first two are out of the window
    expect(at(101_000)).toEqual({ action: 'restart', delayMs: 2_000 });
    expect(at(102_000)).toEqual({ action: 'crash-loop', crashes: 3 });
  });
});

describe('supervised applications', () => {
  it('restarts a crashing application after its backoff by the clock, then reports the crash loop', async () => {
    const clock = new ManualClock(0);
    const loops: AppStatus[] = [];
    const logs = await mkdtemp(join(tmpdir(), 'fleetd-apps-'));
    supervisor = new Supervisor(logs, clock, policy, (s) => loops.push(s));
    supervisor.start({ name: 'app', command: 'echo started; echo oops >&2; exit 3' });
    const state = () => supervisor!.status()[0]!;
    await eventually('the first crash', () => state().state === 'backoff');
    expect(state()).toMatchObject({ restartAt: 1_000, lastExit: 'exit 3', restarts: 0 });
    supervisor.poll(); // not due yet
    expect(state().state).toBe('backoff');
    clock.advance(1_000);
    supervisor.poll();
    await eventually('the second crash', () => state().state === 'backoff' && state().restarts === 1);
    expect(state().restartAt).toBe(3_000);
    clock.advance(2_000);
    supervisor.poll();
    await eventually('the crash loop', () => state().state === 'crash-loop');
    expect(loops).toEqual([expect.objectContaining({ name: 'app', state: 'crash-loop', restarts: 2 })]);
    expect(await supervisor.health()).toEqual({ ok: false, reason: 'crash loop: app (exit 3)' });
    const log = readFileSync(join(logs, 'app.log'), 'utf8');
    expect(log.match(/started/g)).toHaveLength(3);
    expect(log).toContain('oops');
  });

  it('stops an application without counting it as a crash, and starts it again on request', async () => {
    const clock = new ManualClock(0);
    supervisor = new Supervisor(await mkdtemp(join(tmpdir(), 'fleetd-apps-')), clock, policy);
    supervisor.start({ name: 'svc', command: 'sleep 60 & wait' });
    expect(supervisor.status()[0]!.state).toBe('running');
    await supervisor.stop('svc');
    expect(supervisor.status()[0]).toMatchObject({ state: 'stopped', restarts: 0 });
    expect(await supervisor.health()).toEqual({ ok: true, value: undefined });
    await supervisor.restart('svc');
    expect(supervisor.status()[0]!.state).toBe('running');
  });
});

describe('rotated logs', () => {
  it('rotates past the size limit, keeping the newest files only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleetd-log-'));
    const log = new RotatingLog(join(dir, 'a.log'), 10, 2);
    for (const line of ['111111\n', '222222\n', '333333\n', '444444\n']) log.write(line);
    expect(readFileSync(join(dir, 'a.log'), 'utf8')).toBe('444444\n');
    expect(readFileSync(join(dir, 'a.log.1'), 'utf8')).toBe('333333\n');
    expect(readFileSync(join(dir, 'a.log.2'), 'utf8')).toBe('222222\n');
    expect(existsSync(join(dir, 'a.log.3'))).toBe(false);
  });
});
