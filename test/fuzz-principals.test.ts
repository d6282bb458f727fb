/**
 * The route fuzz suite run as each kind of principal, not only as the admin (issue: operator access). For every
 * case besides the usual (no answer ≥ 500, FleetD's error shape): a principal without the permission an
 * operation declares is refused and changes nothing; nothing a principal may not change changes (the whole
 * world is read back as the admin after each case); a scoped principal never changes a device outside its scope,
 * and never reads one it did not name itself. Besides the random cases, a scoped principal reads every object
 * the world has through every read route, and counts the fleet. The world is the fuzz suite's seed: devices tagged region=west
 * and region=north, releases, rollouts, a webhook. SQLite only: the stores' scoping SQL is shared and is checked
 * on both backends by test/access-scope.test.ts. FUZZ_PRINCIPAL_RUNS sets the cases per operation and principal.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { BUILT_IN_ROLES } from '../src/core/permissions.js';
import { mutatedRequest, validishRequest } from './support/fuzz-generators.js';
import { documentedOperations, type FuzzOperation } from './support/fuzz-operations.js';
import { hasErrorShape } from './support/fuzz-run.js';
import { FuzzTarget } from './support/fuzz-target.js';

const RUNS = Number(process.env.FUZZ_PRINCIPAL_RUNS ?? 3);
const SEED = process.env.FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED);

/** Operator operations with a plain answer (the event stream is scoped by its own test). */
const operations = (await documentedOperations()).filter((o) => o.caller === 'operator' && !o.streaming);

interface PrincipalCase {
  name: string;
  role: string;
  scope?: string;
  /** A custom role's permissions (created first). */
  permissions?: string[];
}

const PRINCIPALS: PrincipalCase[] = [
  { name: 'viewer', role: 'viewer' },
  { name: 'west operator', role: 'operator', scope: 'tag.region=west' },
  { name: 'ci release manager', role: 'release-manager' },
  {
    name: 'west support',
    role: 'support',
    scope: 'tag.region=west',
    permissions: ['devices.read', 'events.read'],
  },
];

/** What the world looks like to the admin, without what reading it changes (token use times). */
async function world(target: FuzzTarget, outOfScope: Set<string>): Promise<World> {
  const reads = operations.filter(
    (o) => o.method === 'GET' && o.pathParams.length === 0 && !/events|audit|metrics|alerts|crl/.test(o.path),
  );
  const parts: Record<string, unknown> = {};
  for (const o of reads) parts[o.path] = (await target.asAdmin('GET', o.path)).body;
  const devices = (await target.asAdmin('GET', '/api/v1/devices?limit=500')).json().devices as Array<{
    id: string;
  }>;
  const outside: Record<string, unknown> = {};
  for (const { id } of devices) {
    const detail = (await target.asAdmin('GET', `/api/v1/devices/${encodeURIComponent(id)}`)).json();
    parts[`device ${id}`] = detail;
    if (outOfScope.has(id)) outside[id] = detail;
  }
  // Reading the token list as the cases run shows their token's last use: not a change a case made.
  const stable = (value: unknown) => JSON.stringify(value).replace(/"last_used_at":(null|"[^"]*")/g, '');
  return {
    parts: new Map(Object.entries(parts).map(([k, v]) => [k, stable(v)])),
    outside: stable(outside),
  };
}

interface World {
  /** Each read of the world (a list's path, `device ID`), as text. */
  parts: Map<string, string>;
  /** The devices outside the principal's scope, as text. */
  outside: string;
}

/** The reads whose answer differs, e.g. `/api/v1/rollouts, device dev-002` (empty: the same world). */
function changed(before: World, after: World): string {
  return [...after.parts.keys()].filter((k) => before.parts.get(k) !== after.parts.get(k)).join(', ');
}

/** The permission a request needs by its operation's declaration (`x-permission`), or undefined if any. */
function neededPermission(op: FuzzOperation, url: string): string | undefined {
  const text = op.permission;
  if (text === undefined || text === 'authenticated') return undefined;
  if (!text.includes('(')) return text;
  // `rollouts.control (command pause, resume); releases.approve (command approve)`: by a path parameter.
  const names: string[] = [];
  const pattern = new RegExp(
    `^${op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
      names.push(name);
      return '([^/?]+)';
    })}(?:\\?|$)`,
  );
  const match = pattern.exec(url);
  if (!match) return undefined;
  for (const part of text.split('; ')) {
    const m = /^(\S+) \((\S+) (.+)\)$/.exec(part);
    if (!m) continue;
    const [, permission = '', param = '', values = ''] = m;
    const value = match[names.indexOf(param) + 1];
    if (value !== undefined && values.split(', ').includes(decodeURIComponent(value))) return permission;
  }
  return undefined;
}

/** The fuzz world with the principal's token made (and its custom role), cases sent as it from now on. */
async function actingAs(principal: PrincipalCase) {
  const target = await FuzzTarget.open(async () => undefined);
  if (principal.permissions) {
    const made = await target.asAdmin('POST', '/api/v1/roles', {
      name: principal.role,
      permissions: principal.permissions,
    });
    expect(made.statusCode, made.body).toBe(201);
  }
  const created = await target.asAdmin('POST', '/api/v1/tokens', {
    name: `fuzz-${principal.role}`,
    role: principal.role,
    ...(principal.scope ? { scope: principal.scope } : {}),
  });
  expect(created.statusCode, created.body).toBe(201);
  const token: string = created.json().token;
  target.actAs(token);
  const devices = (await target.asAdmin('GET', '/api/v1/devices?limit=500')).json().devices as Array<{
    id: string;
    tags: Record<string, string>;
  }>;
  const outOfScope = new Set(
    principal.scope ? devices.filter((d) => d.tags.region !== 'west').map((d) => d.id) : [],
  );
  expect(principal.scope === undefined || outOfScope.size > 0).toBe(true);
  return {
    target,
    token,
    outOfScope,
    permissions: new Set(principal.permissions ?? BUILT_IN_ROLES[principal.role]),
  };
}

/** The first device outside the scope an answer shows, that the request did not name itself. */
function shownOutside(body: Buffer, outOfScope: Set<string>, asked: string): string | undefined {
  const text = body.toString('utf8');
  return [...outOfScope].find((id) => text.includes(`"${id}"`) && !asked.includes(id));
}

for (const principal of PRINCIPALS.filter((p) => p.scope)) {
  it(`as ${principal.name}: every read, of every object the world has, shows no device outside the scope`, async () => {
    const { target, token, outOfScope } = await actingAs(principal);
    const leaks: string[] = [];
    try {
      const h = target.hints;
      const objects = [
        ...h.deviceIds,
        h.selfDeviceId,
        ...h.rolloutIds,
        ...h.updateIds,
        ...h.releaseRefs,
        ...h.webhookIds,
      ];
      const reads = operations.filter((o) => o.method === 'GET' && o.pathParams.length <= 1);
      expect(reads.length).toBeGreaterThan(10);
      let answered = 0;
      for (const op of reads) {
        const urls =
          op.pathParams.length === 0
            ? [op.path]
            : objects.map((id) => op.path.replace(/\{[^}]+\}/, encodeURIComponent(id)));
        for (const url of urls) {
          const r = await target.app.inject({
            method: 'GET',
            url,
            headers: { authorization: `Bearer ${token}` },
          });
          if (r.statusCode >= 300) continue;
          answered++;
          const named = [...outOfScope].find((id) => url.includes(encodeURIComponent(id)));
          if (named && /\/devices\//.test(url))
            leaks.push(`GET ${url} → ${r.statusCode}: answers about ${named}`);
          const shown = shownOutside(r.rawPayload, outOfScope, url);
          if (shown) leaks.push(`GET ${url} → ${r.statusCode}: shows ${shown}`);
        }
      }
      expect(answered).toBeGreaterThan(10);
      // Counting is seeing: the fleet's totals are the scope's.
      const stats = await target.app.inject({
        method: 'GET',
        url: '/api/v1/fleet/stats',
        headers: { authorization: `Bearer ${token}` },
      });
      const all = (await target.asAdmin('GET', '/api/v1/fleet/stats')).json().total;
      expect(stats.json().total).toBe(all - outOfScope.size);
    } finally {
      await target.close();
    }
    expect(leaks).toEqual([]);
  }, 120_000);
}

for (const principal of PRINCIPALS) {
  it(`as ${principal.name}: ${RUNS} cases per operation stay inside the role and the scope`, async () => {
    const { target, outOfScope, permissions } = await actingAs(principal);
    const failures: string[] = [];
    try {
      for (const op of operations) {
        const cases = fc.oneof(
          { weight: 3, arbitrary: validishRequest(op, target.hints) },
          { weight: 1, arbitrary: mutatedRequest(op, target.hints) },
        );
        await fc.assert(
          fc.asyncProperty(cases, async (request) => {
            const before = await world(target, outOfScope);
            const { answer } = await target.send(request);
            const after = await world(target, outOfScope);
            const what = `${request.method} ${request.url.slice(0, 160)} [${request.label.slice(0, 80)}] → ${answer.status}`;
            // A case sent with another method (`mutated: as GET`) reaches another route, or none.
            const asDeclared = request.auth === 'operator' && request.method === op.method;
            const needed = asDeclared ? neededPermission(op, request.url) : undefined;
            const allowed = needed === undefined || permissions.has(needed);
            if (answer.status >= 500 || answer.status === 0) failures.push(`${what}: no answer below 500`);
            if (answer.status >= 400 && !hasErrorShape(answer.body))
              failures.push(`${what}: not the error shape`);
            if (!allowed && answer.status < 400) failures.push(`${what}: answered without ${needed}`);
            const diff = changed(before, after);
            if (!allowed && diff) failures.push(`${what}: changed ${diff} without ${needed}`);
            if (before.outside !== after.outside)
              failures.push(`${what}: changed a device outside the scope`);
            if (answer.status < 300) {
              const shown = shownOutside(
                answer.body,
                outOfScope,
                `${request.url} ${request.body?.toString() ?? ''}`,
              );
              if (shown) failures.push(`${what}: shows ${shown}, outside the scope`);
            }
          }),
          { numRuns: RUNS, seed: SEED + operations.indexOf(op) },
        );
      }
    } finally {
      await target.close();
    }
    expect([...new Set(failures)].slice(0, 40)).toEqual([]);
  }, 600_000);
}
