/** Helpers for rollout tests on a VirtualFleet: create through the API, read progress and events. */
import type { RolloutJson } from '../../src/protocol/rollouts.js';
import type { VirtualFleet } from '../../src/sim/virtual-fleet.js';

export const HOUR = 3_600_000;
export const MINUTE = 60_000;

export interface EventJson {
  id: number;
  at: string;
  type: string;
  device_id: string | null;
  rollout_id: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

export async function create(fleet: VirtualFleet, spec: Record<string, unknown>): Promise<RolloutJson> {
  return fleet.api<RolloutJson>('POST', '/api/v1/rollouts', spec);
}

export async function show(fleet: VirtualFleet, id: string): Promise<RolloutJson> {
  return fleet.api<RolloutJson>('GET', `/api/v1/rollouts/${id}`);
}

export async function command(fleet: VirtualFleet, id: string, cmd: string): Promise<RolloutJson> {
  return fleet.api<RolloutJson>('POST', `/api/v1/rollouts/${id}/${cmd}`);
}

/** Every event of a rollout (of a type prefix), in order. */
export async function events(fleet: VirtualFleet, rolloutId: string, type = ''): Promise<EventJson[]> {
  const out: EventJson[] = [];
  let after = 0;
  for (;;) {
    const page = await fleet.api<{ events: EventJson[]; next_after: number }>(
      'GET',
      `/api/v1/events?rollout=${rolloutId}&type=${type}&after=${after}&limit=1000`,
    );
    out.push(...page.events);
    if (page.events.length < 1000) return out;
    after = page.next_after;
  }
}

/** Devices granted a slot (notified), with how many times each was. */
export async function grants(fleet: VirtualFleet, rolloutId: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const e of await events(fleet, rolloutId, 'update.notified')) {
    counts.set(e.device_id!, (counts.get(e.device_id!) ?? 0) + 1);
  }
  return counts;
}

/** Rollout updates of the given state (first 1000). */
export async function devicesIn(fleet: VirtualFleet, rolloutId: string, state: string): Promise<string[]> {
  const r = await fleet.api<{ updates: Array<{ device_id: string }> }>(
    'GET',
    `/api/v1/rollouts/${rolloutId}/updates?state=${state}&limit=1000`,
  );
  return r.updates.map((u) => u.device_id).sort();
}

/** A fleet of `count` devices, all seen at `now` (online), with the given zones and tags cycling. */
export function syntheticFleet(
  count: number,
  options: {
    prefix?: string;
    firmware?: string;
    hardware?: (i: number) => string;
    timezone?: (i: number) => string;
    tags?: (i: number) => Record<string, string>;
    lastSeen?: (i: number) => string | null;
  } = {},
) {
  return {
    devices: Array.from({ length: count }, (_, i) => ({
      id: `${options.prefix ?? 'dev'}-${String(i).padStart(4, '0')}`,
      firmware_version: options.firmware ?? '1.0.0',
      hardware_type: options.hardware?.(i) ?? 'hw-a',
      timezone: options.timezone?.(i) ?? 'UTC',
      tags: options.tags?.(i) ?? {},
      last_seen: options.lastSeen ? options.lastSeen(i) : null,
    })),
  };
}
