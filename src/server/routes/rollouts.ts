/**
 * Operator API for rollouts: plan (dry run), create, list, show with live progress, the device updates of a
 * rollout, and the operator commands. The spec body (JSON, or YAML with a YAML content type) is checked by
 * the same parser as a spec file, so every error names its field the same way.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DURATION_LIMITS, MAX_DURATION_TEXT, parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import type { Permission } from '../../core/permissions.js';
import { REHEARSAL_LIMITS } from '../../core/rollout/rehearsal.js';
import { ROLLOUT_COMMANDS, ROLLOUT_STATES, type RolloutCommand } from '../../core/rollout/rollout-state.js';
import { parseRolloutSpec, RolloutSpecSchema } from '../../core/rollout/spec.js';
import { UPDATE_STATES } from '../../core/update-state.js';
import { planEta, planReachability, rolloutProgress } from '../../engine/progress.js';
import { rehearsePlan } from '../../engine/rehearsal.js';
import { createRollout, planFor, runCommand } from '../../engine/rollout-service.js';
import { INT4_MAX, withErrors } from '../../protocol/common.js';
import { UpdateJson } from '../../protocol/releases.js';
import { RolloutJson } from '../../protocol/rollouts.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { clientLimitsOf } from '../client-limits.js';
import { type ServerContext, timeContext } from '../context.js';
import { updateJson } from '../json.js';
import { rehearsalJson } from '../rehearsal-json.js';
import { planJson, rolloutJson } from '../rollout-json.js';
import { ofVisibleDevices, rolloutInScope, rolloutTargetsInScope } from '../scope.js';
import { validatorCompiler } from '../validation.js';
import { parseYamlBody } from '../yaml-body.js';
import { tufMigrationReady } from './tuf-migration.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 128 }) }, { additionalProperties: false });
const CommandParams = Type.Object(
  { id: Type.String({ maxLength: 128 }), command: Type.Enum([...ROLLOUT_COMMANDS]) },
  { additionalProperties: false },
);
const CreateQuery = Type.Object(
  { dry_run: Type.Optional(Type.Boolean({ description: 'Answer the plan; create nothing' })) },
  { additionalProperties: false },
);
const RehearseQuery = Type.Object(
  {
    failure_rate: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'Share of attempts that fail' }),
    ),
    seeds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: REHEARSAL_LIMITS.seeds, default: 5, description: 'Runs' }),
    ),
    deadline: Type.Optional(
      Type.String({
        maxLength: MAX_DURATION_TEXT,
        description: 'From now (e.g. 72h): find the smallest max_concurrent whose P90 finish meets it',
      }),
    ),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.Enum([...ROLLOUT_STATES])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  },
  { additionalProperties: false },
);
const UpdatesQuery = Type.Object(
  {
    state: Type.Optional(Type.Enum([...UPDATE_STATES])),
    phase: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);

/** Running a rollout is an operator's; letting it past a phase gate is a release manager's. */
const COMMAND_PERMISSIONS: Record<RolloutCommand, Permission> = {
  pause: 'rollouts.control',
  resume: 'rollouts.control',
  cancel: 'rollouts.control',
  rollback: 'rollouts.control',
  approve: 'releases.approve',
  promote: 'releases.approve',
};

export const rolloutRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.addContentTypeParser(['application/yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, parseYamlBody(body as string));
      } catch (e) {
        done(e as Error, undefined);
      }
    });
    const checkParts = validatorCompiler([]);

    app.post(
      '/rollouts',
      {
        config: { permission: 'rollouts.create' },
        schema: {
          summary: 'Create a rollout from a spec (JSON or YAML); with dry_run=true, answer its plan instead',
          tags: ['rollouts'],
          body: RolloutSpecSchema,
          querystring: CreateQuery,
          response: withErrors({
            201: RolloutJson,
            200: Type.Unknown({ description: 'The plan (dry run)' }),
          }),
        },
        // The body is checked by parseRolloutSpec below (field-named errors); the schema documents it.
        validatorCompiler: (route) => (route.httpPart === 'body' ? () => true : checkParts(route)),
      },
      async (request, reply) => {
        const parsed = parseRolloutSpec(request.body);
        if (parsed.adoptTuf && !(await tufMigrationReady(c))) {
          throw new FleetError(
            'VALIDATION',
            'adopt_tuf: no TUF root is signed for migration on this server: run `fleetd keys migrate` first (docs/signing.md)',
          );
        }
        const spec = { ...parsed, filter: await rolloutTargetsInScope(c, request, parsed.filter) };
        const ctx = timeContext(c);
        if (request.query.dry_run) {
          const planned = await planFor(c.store, spec, ctx);
          const eta = await planEta(c.store, planned, planned.devices, ctx);
          const reachability = await planReachability(c.store, planned, planned.devices, ctx);
          const limits = await clientLimitsOf(c, spec, planned.release, ctx);
          return reply
            .status(200)
            .send({ ...planJson(planned, eta, reachability, ctx.now), client_limits: limits });
        }
        const { rollout } = await createRollout(c.store, spec, ctx, actorOf(operatorOf(request)));
        auditChange(request, null, {
          name: rollout.name,
          release: rollout.release,
          strategy: rollout.spec.strategy,
          filter: rollout.spec.filter,
          targets: rollout.targets,
        });
        c.deltas?.planRollout(rollout.id, rollout.releaseId); // in the background: the reply does not wait
        return reply
          .status(201)
          .send(
            await rolloutInScope(
              c,
              request,
              rolloutJson(rollout, await rolloutProgress(c.store, rollout, ctx)),
            ),
          );
      },
    );

    app.post(
      '/rollouts/rehearse',
      {
        // Reads the registry and writes nothing: a reader may rehearse what an operator would create.
        config: { permission: 'rollouts.read' },
        schema: {
          summary:
            "Rehearse a rollout spec in virtual time on the fleet's learnt history: timeline, finish P50/P90, gates",
          tags: ['rollouts'],
          body: RolloutSpecSchema,
          querystring: RehearseQuery,
          response: withErrors({ 200: Type.Unknown({ description: 'The rehearsal' }) }),
        },
        validatorCompiler: (route) => (route.httpPart === 'body' ? () => true : checkParts(route)),
      },
      async (request) => {
        const deadlineText = request.query.deadline;
        const deadlineMs =
          deadlineText === undefined ? null : parseDuration(deadlineText, 'deadline', DURATION_LIMITS.any);
        const parsed = parseRolloutSpec(request.body);
        const spec = { ...parsed, filter: await rolloutTargetsInScope(c, request, parsed.filter) };
        const ctx = timeContext(c);
        const planned = await planFor(c.store, spec, ctx);
        const result = await rehearsePlan(c.store, planned, ctx, {
          failureRate: request.query.failure_rate ?? 0,
          seeds: request.query.seeds ?? 5,
          deadline: deadlineMs === null ? null : ctx.now + deadlineMs,
        });
        return rehearsalJson(result);
      },
    );

    app.get(
      '/rollouts',
      {
        config: { permission: 'rollouts.read' },
        schema: {
          summary: 'Rollouts, newest first, with their progress',
          tags: ['rollouts'],
          querystring: ListQuery,
          response: withErrors({ 200: Type.Object({ rollouts: Type.Array(RolloutJson) }) }),
        },
      },
      async (request) => {
        const ctx = timeContext(c);
        const list = await c.store.rollouts.list({
          limit: request.query.limit ?? 100,
          ...(request.query.state ? { states: [request.query.state] } : {}),
        });
        const rollouts = [];
        for (const r of list) {
          rollouts.push(
            await rolloutInScope(c, request, rolloutJson(r, await rolloutProgress(c.store, r, ctx))),
          );
        }
        return { rollouts };
      },
    );

    app.get(
      '/rollouts/:id',
      {
        config: { permission: 'rollouts.read' },
        schema: {
          summary: 'One rollout: phases, counts by state, gates, ETA, failing devices',
          tags: ['rollouts'],
          params: IdParams,
          response: withErrors({ 200: RolloutJson }),
        },
      },
      async (request) => {
        const r = await c.store.rollouts.get(request.params.id);
        if (!r) throw new FleetError('NOT_FOUND', `rollout ${request.params.id} does not exist`);
        return rolloutInScope(c, request, rolloutJson(r, await rolloutProgress(c.store, r, timeContext(c))));
      },
    );

    app.get(
      '/rollouts/:id/updates',
      {
        config: { permission: 'rollouts.read' },
        schema: {
          summary: "The rollout's device updates, by state or phase",
          tags: ['rollouts'],
          params: IdParams,
          querystring: UpdatesQuery,
          response: withErrors({ 200: Type.Object({ updates: Type.Array(UpdateJson) }) }),
        },
      },
      async (request) => {
        const q = request.query;
        if (!(await c.store.rollouts.get(request.params.id))) {
          throw new FleetError('NOT_FOUND', `rollout ${request.params.id} does not exist`);
        }
        const updates = await c.store.updates.list({
          rolloutId: request.params.id,
          limit: q.limit ?? 100,
          ...(q.state !== undefined ? { state: q.state } : {}),
          ...(q.phase !== undefined ? { phase: q.phase } : {}),
        });
        return { updates: (await ofVisibleDevices(c, request, updates)).map(updateJson) };
      },
    );

    app.post(
      '/rollouts/:id/:command',
      {
        config: { permission: { param: 'command', permissions: COMMAND_PERMISSIONS } },
        schema: {
          summary:
            'pause, resume, cancel, approve (the next phase), promote (progressive: the next phase now; blue-green: switch) or rollback',
          tags: ['rollouts'],
          params: CommandParams,
          response: withErrors({ 200: RolloutJson }),
        },
      },
      async (request) => {
        const ctx = timeContext(c);
        const before = await c.store.rollouts.get(request.params.id);
        const r = await runCommand(
          c.store,
          request.params.id,
          request.params.command as RolloutCommand,
          ctx,
          actorOf(operatorOf(request)),
        );
        auditChange(request, before && { state: before.state, current_phase: before.currentPhase }, {
          state: r.state,
          current_phase: r.currentPhase,
        });
        return rolloutInScope(c, request, rolloutJson(r, await rolloutProgress(c.store, r, ctx)));
      },
    );
  };
