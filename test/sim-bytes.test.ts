/**
 * The simulator's download accounting: every download a device starts counts (a retry again), with the bytes
 * it fetches — the full artifact, or the delta the server offered next to it.
 */
import { describe, expect, it } from 'vitest';
import type { PendingUpdateJson } from '../src/protocol/device-api.js';
import { RolloutObservation } from '../src/sim/observer.js';
import { formatReport } from '../src/sim/report.js';
import { buildResult } from '../src/sim/result.js';
import { parseScenario } from '../src/sim/scenario.js';
import { Simulator } from '../src/sim/simulator.js';

// What the simulator uploads as a release's artifact (VirtualFleet.release).
const artifactBytes = (name: string, version: string) => `${name} ${version} image\n`.repeat(64).length;

const scenario = (failure: number) => ({
  start: '2026-03-02T00:00:00Z',
  duration: '2d',
  seed: 3,
  fleet: [
    {
      count: 60,
      id_prefix: 'dev-',
      profile: 'always',
      hardware_type: 'hw',
      firmware: { '1.0.0': 1 },
      timezones: { UTC: 1 },
      install_seconds: 600,
      failure_rate: failure,
    },
  ],
  rollouts: [
    {
      at: '10m',
      spec: {
        name: 'bytes',
        release: 'fw@2.0.0',
        filter: '',
        strategy: 'immediate',
        max_concurrent: 60,
        retry: { attempts: 3 },
      },
    },
  ],
});

describe('simulator download bytes', () => {
  it('counts one full download per device, and each retry again', async () => {
    const size = artifactBytes('fw', '2.0.0');
    const clean = buildResult(await new Simulator(parseScenario(scenario(0))).run()).rollouts[0]!;
    expect(clean.final.succeeded).toBe(60);
    expect(clean.downloads).toEqual({ full: 60, delta: 0, bytes_full: 60 * size, bytes_delta: 0 });

    const result = buildResult(await new Simulator(parseScenario(scenario(0.25))).run());
    const r = result.rollouts[0]!;
    const failed = r.final.failed ?? 0;
    expect(failed).toBeGreaterThan(0);
    // A failing device fails every attempt: it downloads three times, the others once.
    expect(r.downloads.full).toBe((r.final.succeeded ?? 0) + 3 * failed);
    expect(r.downloads.bytes_full).toBe(r.downloads.full * size);
    expect(formatReport(result)).toContain(
      `downloads: ${r.downloads.full} full (${r.downloads.bytes_full.toLocaleString('en-US')} bytes), 0 delta (0 bytes)`,
    );
  });

  it('devices offered a delta from the version they run fetch it instead of the full artifact', async () => {
    const spec = (name: string, release: string) => ({
      name,
      release,
      filter: '',
      strategy: 'immediate',
      max_concurrent: 20,
      retry: { attempts: 1 },
    });
    const doc = scenario(0);
    doc.fleet[0]!.count = 20;
    const result = buildResult(
      await new Simulator(
        parseScenario({
          ...doc,
          // The heartbeat route adds the delta to the offer: devices enter over HTTP.
          simulation: { layer: 'http' },
          rollouts: [
            { at: '10m', spec: spec('first', 'fw@1.5.0') },
            { at: '1d', spec: spec('second', 'fw@2.0.0') },
          ],
        }),
      ).run(),
    );
    const [first, second] = result.rollouts;
    // Nothing runs 1.0.0's release: full downloads; then every device runs 1.5.0, the second delta's source.
    expect(first!.downloads).toEqual({
      full: 20,
      delta: 0,
      bytes_full: 20 * artifactBytes('fw', '1.5.0'),
      bytes_delta: 0,
    });
    expect(second!.final.succeeded).toBe(20);
    expect(second!.downloads).toMatchObject({ full: 0, delta: 20, bytes_full: 0 });
    const each = second!.downloads.bytes_delta / 20;
    expect(Number.isInteger(each) && each > 0 && each < artifactBytes('fw', '2.0.0')).toBe(true);
  });

  it('counts a download offered with a delta as the delta’s bytes', () => {
    const o = new RolloutObservation('r', 'ro_1', 1);
    const offer = {
      manifest: JSON.stringify({ version: '2.0.0', size: 5_000 }),
    } as PendingUpdateJson;
    o.downloaded(offer);
    o.downloaded({ ...offer, delta: { size: 700 } } as PendingUpdateJson);
    o.downloaded({ ...offer, delta: { size: 700 } } as PendingUpdateJson);
    expect(o.downloads).toEqual({ full: 1, delta: 2, bytesFull: 5_000, bytesDelta: 1_400 });
  });
});
