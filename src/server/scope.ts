/**
 * Scopes: a principal with a scope (a filter expression) sees, counts and acts on the devices it matches and
 * no others. Its filter is and-ed into the caller's in SQL (the same compiler as every filter), so a scoped
 * listing costs what the narrower filter costs; a device outside it is answered as not found, so a scope
 * does not even reveal which devices exist elsewhere.
 */
import type { FastifyRequest } from 'fastify';
import { isAuditEvent } from '../core/audit/audit-export.js';
import { FleetError } from '../core/errors.js';
import { type FilterNode, parseFilter } from '../core/filter/index.js';
import type { RolloutJson } from '../protocol/rollouts.js';
import type { StoredEvent } from '../store/store.js';
import { type ServerContext, timeContext } from './context.js';
import { principalOf } from './principal.js';

const both = (a: FilterNode | undefined, b: FilterNode | undefined): FilterNode | undefined =>
  a === undefined ? b : b === undefined ? a : { kind: 'and', children: [a, b] };

const idsAre = (ids: string[]): FilterNode => ({ kind: 'text', field: 'id', values: ids, glob: false });

/** The caller's filter narrowed to the principal's scope. */
export function scopedFilter(
  request: FastifyRequest,
  filter: FilterNode | undefined,
): FilterNode | undefined {
  return both(principalOf(request).scopeFilter, filter);
}

/** The ids among `ids` that the principal's scope includes (all of them for an unscoped principal). */
export async function idsInScope(
  c: ServerContext,
  request: FastifyRequest,
  ids: string[],
): Promise<Set<string>> {
  const scope = principalOf(request).scopeFilter;
  if (scope === undefined || ids.length === 0) return new Set(ids);
  const unique = [...new Set(ids)];
  const page = await c.store.listDevices({
    ...timeContext(c),
    filter: both(scope, idsAre(unique)),
    limit: unique.length,
  });
  return new Set(page.devices.map((d) => d.id));
}

/** Refuses a device outside the principal's scope as the unknown device it is to this principal. */
export async function mustSeeDevice(c: ServerContext, request: FastifyRequest, id: string): Promise<void> {
  if (!(await idsInScope(c, request, [id])).has(id)) {
    throw new FleetError('DEVICE_NOT_FOUND', `device ${id} is not registered`);
  }
}

/**
 * The events a principal may read: an exported audit entry only with `audit.read`; for a scoped principal, only
 * those about a device in its scope (an event about no device, such as a rollout's or a token's, concerns the
 * whole fleet). A page may so hold fewer than asked.
 */
export async function visibleEvents(
  c: ServerContext,
  request: FastifyRequest,
  all: StoredEvent[],
): Promise<StoredEvent[]> {
  const principal = principalOf(request);
  const events = principal.permissions.has('audit.read') ? all : all.filter((e) => !isAuditEvent(e.type));
  if (principal.scopeFilter === undefined) return events;
  const ids = events.flatMap((e) => (e.deviceId === null ? [] : [e.deviceId]));
  const visible = await idsInScope(c, request, ids);
  return events.filter((e) => e.deviceId !== null && visible.has(e.deviceId));
}

/** The records (updates, …) of devices in the principal's scope, in their order. */
export async function ofVisibleDevices<T extends { deviceId: string }>(
  c: ServerContext,
  request: FastifyRequest,
  records: T[],
): Promise<T[]> {
  if (principalOf(request).scopeFilter === undefined) return records;
  const visible = await idsInScope(
    c,
    request,
    records.map((r) => r.deviceId),
  );
  return records.filter((r) => visible.has(r.deviceId));
}

/** What a scoped principal may not do at all, because it would reach the whole fleet. */
export function refuseScoped(request: FastifyRequest, what: string): void {
  const p = principalOf(request);
  if (p.scope === null) return;
  throw new FleetError(
    'FORBIDDEN',
    `${what} reaches beyond a scope; ${p.kind === 'session' ? 'user' : 'token'} ${p.name} is limited to devices matching "${p.scope}"`,
    { scope: p.scope },
  );
}

/**
 * A rollout's target filter for a scoped creator: refused (403, with the count) when it matches devices
 * outside the scope, and otherwise narrowed to the scope, so devices that match later (on_connect) stay in it.
 */
export async function rolloutTargetsInScope(
  c: ServerContext,
  request: FastifyRequest,
  filterText: string,
): Promise<string> {
  const p = principalOf(request);
  if (p.scope === null || p.scopeFilter === undefined) return filterText;
  const target = parseFilter(filterText);
  const outside = await c.store.countDevices(
    both(target, { kind: 'not', child: p.scopeFilter }),
    timeContext(c),
  );
  if (outside > 0) {
    throw new FleetError(
      'FORBIDDEN',
      `the rollout targets ${outside} device(s) outside your scope "${p.scope}"; narrow its filter`,
      { outside, scope: p.scope },
    );
  }
  return filterText.trim() === '' ? p.scope : `(${p.scope}) and (${filterText})`;
}

/** Refuses (403, with the count) a write naming devices by id of which some lie outside the caller's scope. */
export async function mustStayInScope(
  c: ServerContext,
  request: FastifyRequest,
  ids: string[],
): Promise<void> {
  const p = principalOf(request);
  if (p.scope === null) return;
  const inside = await idsInScope(c, request, ids);
  const outside = new Set(ids.filter((id) => !inside.has(id))).size;
  if (outside > 0) {
    throw new FleetError(
      'FORBIDDEN',
      `${outside} of the devices named lie outside the scope "${p.scope}" of ${p.kind === 'session' ? 'user' : 'token'} ${p.name}`,
      { scope: p.scope, outside },
    );
  }
}

/**
 * A rollout as a scoped principal may see it: the devices it names (failing, unreachable, never seen, without a
 * rollback) narrowed to the scope. Its counts stay the rollout's own: they say how far it is, not which devices.
 */
export async function rolloutInScope(
  c: ServerContext,
  request: FastifyRequest,
  rollout: RolloutJson,
): Promise<RolloutJson> {
  if (principalOf(request).scopeFilter === undefined) return rollout;
  const { eta, failing, rollback_unavailable: noRollback } = rollout;
  const named = [
    ...failing.map((f) => f.device_id),
    ...(noRollback?.devices.map((d) => d.device_id) ?? []),
    ...(eta?.reachability.unreachable.devices ?? []),
    ...(eta?.reachability.never_seen.devices ?? []),
  ];
  const visible = await idsInScope(c, request, named);
  const seen = <T extends { devices: string[] }>(list: T): T => ({
    ...list,
    devices: list.devices.filter((id) => visible.has(id)),
  });
  return {
    ...rollout,
    failing: failing.filter((f) => visible.has(f.device_id)),
    rollback_unavailable: noRollback && {
      ...noRollback,
      devices: noRollback.devices.filter((d) => visible.has(d.device_id)),
    },
    eta: eta && {
      ...eta,
      reachability: {
        ...eta.reachability,
        unreachable: seen(eta.reachability.unreachable),
        never_seen: seen(eta.reachability.never_seen),
      },
    },
  };
}
