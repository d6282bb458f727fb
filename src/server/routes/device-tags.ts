/** Operator API: editing device tags by id or by filter (docs/filters.md, "Editing tags"). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { FleetError } from '../../core/errors.js';
import { parseFilter } from '../../core/filter/index.js';
import { checkTagEdit } from '../../core/tag-edit.js';
import { withErrors } from '../../protocol/common.js';
import { TagEditBody, TagEditReply } from '../../protocol/tags.js';
import { AUDITED_DEVICES, auditChange } from '../audit/audit-trail.js';
import { actorOf, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { mustStayInScope, scopedFilter } from '../scope.js';

/** The changed devices an edit's audit entry names: an edit by filter may change 10,000. */

export const deviceTagRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/devices/tags',
      {
        config: { permission: 'devices.write' },
        schema: {
          summary:
            'Set and remove tags on devices by id or filter; one result per device, a device.tagged event per change',
          tags: ['devices'],
          body: TagEditBody,
          response: withErrors({ 200: TagEditReply }),
        },
      },
      async (request) => {
        const operator = operatorOf(request);
        const body = request.body;
        // Everything is checked before the first write: the edit itself, then the filter.
        const edit = checkTagEdit({ set: body.set ?? {}, remove: body.remove ?? [] });
        const filter = 'filter' in body ? parseFilter(body.filter) : undefined;
        if ('filter' in body && filter === undefined) {
          throw new FleetError('VALIDATION', 'filter: an empty filter would take every device; name some');
        }
        const ids = 'ids' in body ? body.ids : [];
        // A scoped caller reaches the devices of its scope only: a filter is narrowed, ids are checked.
        if (filter === undefined) await mustStayInScope(c, request, ids);
        const selection =
          filter === undefined ? { ids } : { filter: scopedFilter(request, filter) ?? filter };
        const results = await c.store.tags.edit(edit, selection, timeContext(c), actorOf(operator));
        const changed = results.filter((r) => r.ok && r.changed);
        // Tags before differ per device and are not read; the edit and which devices it changed are kept.
        auditChange(request, null, {
          set: edit.set,
          remove: edit.remove,
          changed: changed.length,
          devices: changed.slice(0, AUDITED_DEVICES).map((r) => r.id),
        });
        return { results, changed: changed.length };
      },
    );
  };
