/** Operator API: fleet statistics, events and enrollment tokens. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DURATION_LIMITS, parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { groupNames, parseFilter } from '../../core/filter/index.js';
import { withErrors } from '../../protocol/common.js';
import {
  EnrollmentCreateBody,
  EnrollmentTokenJson,
  EnrollmentTokenParams,
  EnrollmentTokenReply,
  EventJson,
  EventsQuery,
  eventJson,
  HistoryQuery,
  HistoryReply,
  StatsQuery,
  StatsReply,
} from '../../protocol/operator-api.js';
import { hashSecret, newId, newSecret } from '../../registry/credentials.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { enrollmentTokenJson, statsJson } from '../json.js';
import { refuseScoped, scopedFilter, visibleEvents } from '../scope.js';

/** How long an enrollment token lasts when its creator does not say. */
export const DEFAULT_ENROLLMENT_EXPIRY = '7d';

export const fleetRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/fleet/stats',
      {
        config: { permission: 'devices.read' },
        schema: {
          summary: 'Counts by status, firmware distribution, hardware types, tag breakdowns, silent devices',
          tags: ['fleet'],
          querystring: StatsQuery,
          response: withErrors({ 200: StatsReply }),
        },
      },
      async (request) => {
        const ctx = timeContext(c);
        const stats = await c.store.fleetStats(
          scopedFilter(request, parseFilter(request.query.filter ?? '')),
          request.query.tag,
          ctx,
        );
        return statsJson(stats, ctx.now);
      },
    );

    app.get(
      '/fleet/history',
      {
        config: { permission: 'metrics.read' },
        schema: {
          summary: 'Counts by status over time (recorded every few minutes): the online share of the fleet',
          tags: ['fleet'],
          querystring: HistoryQuery,
          response: withErrors({ 200: HistoryReply }),
        },
      },
      async (request) => {
        // The snapshots count the whole fleet; a scoped principal counts only its own devices (/fleet/stats).
        refuseScoped(request, 'the fleet history');
        const now = c.clock.now();
        const since = now - parseDuration(request.query.since ?? '24h', 'since', DURATION_LIMITS.history);
        const snapshots = await c.store.fleetHistory(since, now);
        return {
          snapshots: snapshots.map((s) => ({
            at: new Date(s.at).toISOString(),
            total: s.total,
            by_status: s.byStatus,
          })),
        };
      },
    );

    app.get(
      '/events',
      {
        config: { permission: 'events.read' },
        schema: {
          summary: 'Stored events in order, after a cursor (the last id you saw)',
          tags: ['events'],
          querystring: EventsQuery,
          response: withErrors({
            200: Type.Object({ events: Type.Array(EventJson), next_after: Type.Integer() }),
          }),
        },
      },
      async (request) => {
        const q = request.query;
        const events = await c.store.listEvents({
          limit: q.limit ?? 100,
          ...(q.after !== undefined ? { after: q.after } : {}),
          ...(q.device !== undefined ? { deviceId: q.device } : {}),
          ...(q.rollout !== undefined ? { rolloutId: q.rollout } : {}),
          ...(q.type !== undefined ? { typePrefix: q.type } : {}),
        });
        const visible = await visibleEvents(c, request, events);
        // The cursor moves past what a scope hides, so a scoped reader is not handed the same page again.
        return { events: visible.map(eventJson), next_after: events.at(-1)?.id ?? q.after ?? 0 };
      },
    );

    app.post(
      '/enrollment-tokens',
      {
        config: { permission: 'enrollment.write' },
        schema: {
          summary: 'Create a token devices use to register themselves (shown once)',
          tags: ['devices'],
          body: EnrollmentCreateBody,
          response: withErrors({ 201: EnrollmentTokenReply }),
        },
      },
      async (request, reply) => {
        const operator = operatorOf(request);
        const now = c.clock.now();
        const body = request.body;
        // Parsed (and bounded) before anything is written; a token nobody remembers must not stay valid for ever.
        const expiresInMs = parseDuration(
          body.expires_in ?? DEFAULT_ENROLLMENT_EXPIRY,
          'expires_in',
          DURATION_LIMITS.tokenExpiry,
        );
        const claim = body.claim === undefined ? undefined : parseFilter(body.claim);
        if (body.claim !== undefined && claim === undefined) {
          throw new FleetError('VALIDATION', 'claim: give a filter naming the devices the token may claim');
        }
        // A claim is checked against one device as it enrolls, in memory, where group terms are not resolved.
        if (groupNames(claim).size > 0) {
          throw new FleetError(
            'VALIDATION',
            'claim: group terms cannot be used in a claim; name the devices by id, tag or other fields',
          );
        }
        const token = newSecret('enroll');
        const record = {
          id: newId('enr'),
          usesLeft: body.uses ?? null,
          expiresAt: now + expiresInMs,
          tags: body.tags ?? {},
          createdAt: now,
          claim: body.claim ?? null,
        };
        await c.store.createEnrollmentToken(record, hashSecret(token), actorOf(operator));
        // Never the token: what it allows and until when.
        auditChange(request, null, {
          uses_left: record.usesLeft,
          expires_at: new Date(record.expiresAt).toISOString(),
          tags: record.tags,
          claim: record.claim,
        });
        return reply.status(201).send({
          id: record.id,
          token,
          uses_left: record.usesLeft,
          expires_at: new Date(record.expiresAt).toISOString(),
          tags: record.tags,
          claim: record.claim,
        });
      },
    );

    app.get(
      '/enrollment-tokens',
      {
        config: { permission: 'enrollment.write' },
        schema: {
          summary: 'Every enrollment token, newest first (never the token itself)',
          tags: ['devices'],
          response: withErrors({ 200: Type.Object({ tokens: Type.Array(EnrollmentTokenJson) }) }),
        },
      },
      async () => {
        const now = c.clock.now();
        const tokens = await c.store.listEnrollmentTokens();
        return { tokens: tokens.map((t) => enrollmentTokenJson(t, now)) };
      },
    );

    app.delete(
      '/enrollment-tokens/:id',
      {
        config: { permission: 'enrollment.write' },
        schema: {
          summary: 'Revoke an enrollment token: no device enrolls with it any more',
          tags: ['devices'],
          params: EnrollmentTokenParams,
          response: withErrors({ 200: Type.Object({ revoked: Type.String() }) }),
        },
      },
      async (request) => {
        const now = c.clock.now();
        await c.store.revokeEnrollmentToken(request.params.id, now, actorOf(operatorOf(request)));
        // The store refuses a token revoked already: it was live until now.
        auditChange(request, { revoked_at: null }, { revoked_at: new Date(now).toISOString() });
        return { revoked: request.params.id };
      },
    );
  };
