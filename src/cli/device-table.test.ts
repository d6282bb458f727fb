import { describe, expect, it } from 'vitest';
import type { DeviceJson } from '../protocol/operator-api.js';
import { deviceTable } from './devices.js';

const device = (id: string, tags: Record<string, string>): DeviceJson =>
  ({
    id,
    name: id,
    status: 'online',
    firmware_version: '1.0.0',
    hardware_type: 'board-x',
    last_seen: null,
    location: null,
    tags,
  }) as unknown as DeviceJson;

describe('fleetd devices ls', () => {
  it("shows each device's update client: the agent, or SWUpdate or mender-client served as they are", () => {
    const lines = deviceTable([
      device('agent-1', {}),
      device('sw-1', { client: 'swupdate' }),
      device('mender-1', { client: 'mender' }),
    ]).split('\n');
    expect(lines[0]).toMatch(/HARDWARE\s+CLIENT\s+LAST SEEN/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/)[5])).toEqual(['agent', 'swupdate', 'mender']);
  });
});
