/**
 * Configuration rollouts (docs/configuration.md, "Rolling a staged version out with a strategy"): start rolling a
 * document's staged version out phase by phase, show it with each phase's counts, pause, resume (a halted one is
 * judged again) or cancel it (the staged version is dropped). The driver (engine/config-rollout-driver.ts) does
 * the rest on its ticks. Each route needs what a staged release needs (config.write) and the rollout permission
 * of the same act (rollouts.create, rollouts.control).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type ConfigRolloutState, checkConfigRolloutPlan } from '../../core/config-rollout.js';
import { FleetError } from '../../core/errors.js';
import type { Permission } from '../../core/permissions.js';
import { withErrors } from '../../protocol/common.js';
import { ConfigParams } from '../../protocol/config.js';
import {
  ConfigRolloutJson,
  ConfigRolloutList,
  ConfigRolloutQuery,
  configRolloutJson,
  StartConfigRolloutBody,
} from '../../protocol/config-rollouts.js';
import type { ConfigRolloutRecord } from '../../store/config-rollout-store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { principalOf } from '../principal.js';

function mustHave(request: FastifyRequest, permission: Permission): void {
  const principal = principalOf(request);
  if (!principal.permissions.has(permission)) {
    throw new FleetError(
      'FORBIDDEN',
      `${request.method} ${request.routeOptions.url} also needs the permission ${permission}, which role ${principal.role} does not have`,
    );
  }
}

/** What an operator may do to a rollout in each state, and what it becomes. */
const CONTROLS = {
  pause: { from: ['running'], to: 'paused', event: 'config.rollout.paused' },
  resume: { from: ['paused', 'halted'], to: 'running', event: 'config.rollout.resumed' },
  cancel: { from: ['running', 'paused', 'halted'], to: 'cancelled', event: 'config.rollout.cancelled' },
} as const satisfies Record<
  string,
  { from: readonly ConfigRolloutState[]; to: ConfigRolloutState; event: string }
>;

export const configRolloutRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    /** A rollout of a document another scope set is, to a scoped principal, not there. */
    const visible = (request: FastifyRequest, r: ConfigRolloutRecord | undefined) => {
      const scope = principalOf(request).scope;
      return r === undefined || scope === null || r.scope === scope ? r : undefined;
    };
    const withCounts = async (r: ConfigRolloutRecord) =>
      configRolloutJson(r, await c.store.configRollouts.phaseCounts(r));

    app.post(
      '/config/:name/rollout',
      {
        config: { permission: 'config.write' },
        schema: {
          summary:
            "Roll the staged version out with a strategy: each phase's share of the devices is released, judged once its devices reported and its soak passed, and the rollout halts when too many failed",
          tags: ['config'],
          params: ConfigParams,
          body: StartConfigRolloutBody,
          response: withErrors({ 200: ConfigRolloutJson }),
        },
      },
      async (request) => {
        mustHave(request, 'rollouts.create');
        const { name } = request.params;
        const { version, ...rest } = request.body;
        // Checked before the first write: the plan, then (in the store) the staged version and no other rollout.
        const plan = checkConfigRolloutPlan(rest);
        const staged = await c.store.config.staged(name);
        const scope = principalOf(request).scope;
        if (!staged || (scope !== null && staged.scope !== scope)) {
          throw new FleetError('NOT_FOUND', `configuration ${name} has no staged version`);
        }
        const created = await c.store.configRollouts.create(
          name,
          version,
          plan,
          scope,
          timeContext(c),
          actorOf(operatorOf(request)),
        );
        auditChange(request, null, { rollout: created.id, state: created.state, version });
        return withCounts(created);
      },
    );

    app.get(
      '/config/:name/rollout',
      {
        config: { permission: 'config.read' },
        schema: {
          summary: "A document's active configuration rollout (else its latest) with each phase's counts",
          tags: ['config'],
          params: ConfigParams,
          response: withErrors({ 200: ConfigRolloutJson }),
        },
      },
      async (request) => {
        const { name } = request.params;
        const r = visible(request, await c.store.configRollouts.latest(name));
        if (!r) throw new FleetError('NOT_FOUND', `configuration ${name} has no rollout`);
        return withCounts(r);
      },
    );

    app.get(
      '/config-rollouts',
      {
        config: { permission: 'config.read' },
        schema: {
          summary: "Configuration rollouts, newest first (at most 100), or one document's",
          tags: ['config'],
          querystring: ConfigRolloutQuery,
          response: withErrors({ 200: ConfigRolloutList }),
        },
      },
      async (request) => {
        const all = await c.store.configRollouts.list(request.query.name);
        const shown = all.filter((r) => visible(request, r));
        const rollouts = [];
        for (const r of shown) rollouts.push(await withCounts(r));
        return { rollouts };
      },
    );

    for (const [action, control] of Object.entries(CONTROLS)) {
      app.post(
        `/config/:name/rollout/${action}`,
        {
          config: { permission: 'config.write' },
          schema: {
            summary:
              action === 'pause'
                ? 'Pause the configuration rollout: no more devices are released, no gate judges'
                : action === 'resume'
                  ? 'Resume a paused or halted configuration rollout; a halted phase is judged again'
                  : 'Cancel the configuration rollout and drop the staged version: the devices it reached go back to the current version',
            tags: ['config'],
            params: ConfigParams,
            response: withErrors({ 200: ConfigRolloutJson }),
          },
        },
        async (request) => {
          mustHave(request, 'rollouts.control');
          const { name } = request.params;
          const actor = actorOf(operatorOf(request));
          const before = visible(request, await c.store.configRollouts.latest(name));
          if (!before || !(['running', 'paused', 'halted'] as string[]).includes(before.state)) {
            throw new FleetError('NOT_FOUND', `configuration ${name} has no active rollout`);
          }
          if (!(control.from as readonly string[]).includes(before.state)) {
            throw new FleetError(
              'CONFLICT',
              `the rollout of ${name} is ${before.state}; it can be ${action === 'pause' ? 'resumed or cancelled' : 'paused or cancelled'}`,
            );
          }
          const ctx = timeContext(c);
          const after = await c.store.configRollouts.transition(
            before.id,
            {
              from: control.from,
              state: control.to,
              reason:
                action === 'cancel'
                  ? `cancelled by ${actor}`
                  : action === 'pause'
                    ? `paused by ${actor}`
                    : null,
              // Cancelled, it keeps each phase's counts: its releases go with the staged version.
              ...(action === 'cancel' ? { final: 'now' as const } : {}),
              event: { type: control.event },
            },
            ctx,
            actor,
          );
          if (!after)
            throw new FleetError('CONFLICT', `the rollout of ${name} changed meanwhile; look again`);
          if (action === 'cancel') {
            const staged = await c.store.config.staged(name);
            // Only the version it rolled out: one staged since is someone else's.
            if (staged?.version === after.version)
              await c.store.config.unstage(name, after.scope, ctx, actor);
          }
          auditChange(
            request,
            { rollout: before.id, state: before.state },
            { rollout: after.id, state: after.state },
          );
          return withCounts(after);
        },
      );
    }
  };
