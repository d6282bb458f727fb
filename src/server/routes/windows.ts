/**
 * Device windows (docs/rollouts.md, "Windows that belong to devices"): an operator sets, shows, lists and removes
 * a device's own maintenance windows; a device reports its windows and defers an offered soft update within its
 * rollout's budget (409 once the budget is spent: the update is forced).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseDuration } from '../../core/duration.js';
import { FleetError } from '../../core/errors.js';
import { DEFAULT_DEFERRAL_MS, DEVICE_DEFERRAL_MAX_MS } from '../../core/rollout/deferral.js';
import type { ResolvedWindows } from '../../core/rollout/device-windows.js';
import { windowDocument } from '../../core/rollout/spec-document.js';
import { withErrors } from '../../protocol/common.js';
import { UpdateParams } from '../../protocol/device-api.js';
import {
  DeferBody,
  DeferReply,
  DeviceWindowParams,
  DeviceWindowsBody,
  DeviceWindowsReply,
  deferralJson,
  deviceWindowsJson,
  WindowsListQuery,
  WindowsListReply,
} from '../../protocol/windows.js';
import type { DeviceWindows } from '../../store/device-window-store.js';
import { auditChange } from '../audit/audit-trail.js';
import { actorOf, authenticateDevice, operatorOf } from '../auth.js';
import { type ServerContext, timeContext } from '../context.js';
import { mustSeeDevice, ofVisibleDevices } from '../scope.js';
import { validatorCompiler } from '../validation.js';
import { sharedWindowRoutes, windowsOf } from './shared-windows.js';

/** The windows a device takes under `window: device_defined` and where they come from (null: the fallback). */
export const resolvedJson = (r: ResolvedWindows | undefined) =>
  r ? { source: r.source, from: r.from, windows: r.windows.map(windowDocument) } : null;

/** What the audit log keeps of a device's own windows: who set them last and the (at most 8, small) windows. */
const windowsShown = (w: DeviceWindows | undefined) => (w ? { source: w.source, windows: w.windows } : null);

export const windowRoutes =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const checkParts = validatorCompiler([]);
    const bodyChecked = (route: Parameters<typeof checkParts>[0]) =>
      route.httpPart === 'body' ? () => true : checkParts(route);

    await app.register(sharedWindowRoutes(c));

    const reply = async (deviceId: string) => {
      const windows = await c.store.deviceWindows.get(deviceId);
      const resolved = await c.store.deviceWindows.resolve([deviceId], timeContext(c));
      const deferrals = await c.store.deviceWindows.deferrals(deviceId);
      return {
        device_id: deviceId,
        windows: windows ? deviceWindowsJson(windows) : null,
        resolved: resolvedJson(resolved.get(deviceId)),
        deferrals: deferrals.map(deferralJson),
      };
    };

    app.get(
      '/devices/:id/windows',
      {
        config: { permission: 'windows.read' },
        schema: {
          summary: "A device's own maintenance windows and its deferrals of offered updates",
          tags: ['devices'],
          params: DeviceWindowParams,
          response: withErrors({ 200: DeviceWindowsReply }),
        },
      },
      async (request) => {
        const id = request.params.id;
        await mustSeeDevice(c, request, id);
        if (!(await c.store.getDevice(id, timeContext(c)))) {
          throw new FleetError('DEVICE_NOT_FOUND', `device ${id} is not registered`);
        }
        return reply(id);
      },
    );

    app.put(
      '/devices/:id/windows',
      {
        config: { permission: 'windows.write' },
        schema: {
          summary:
            "Set a device's own maintenance windows (honoured by rollouts with window: device_defined)",
          tags: ['devices'],
          params: DeviceWindowParams,
          body: DeviceWindowsBody,
          response: withErrors({ 200: DeviceWindowsReply }),
        },
        validatorCompiler: bodyChecked,
      },
      async (request) => {
        const id = request.params.id;
        const windows = windowsOf(request.body);
        await mustSeeDevice(c, request, id);
        const before = await c.store.deviceWindows.get(id);
        const set = await c.store.deviceWindows.set(
          id,
          windows,
          'operator',
          actorOf(operatorOf(request)),
          c.clock.now(),
        );
        auditChange(request, windowsShown(before), windowsShown(set));
        return reply(id);
      },
    );

    app.delete(
      '/devices/:id/windows',
      {
        config: { permission: 'windows.write' },
        schema: {
          summary: "Remove a device's own windows: rollouts then use their fallback window for it",
          tags: ['devices'],
          params: DeviceWindowParams,
          response: withErrors({ 200: DeviceWindowsReply }),
        },
      },
      async (request) => {
        const id = request.params.id;
        await mustSeeDevice(c, request, id);
        const before = await c.store.deviceWindows.get(id);
        if (!(await c.store.deviceWindows.remove(id, actorOf(operatorOf(request)), c.clock.now()))) {
          throw new FleetError('NOT_FOUND', `device ${id} has no windows of its own`);
        }
        auditChange(request, windowsShown(before), null);
        return reply(id);
      },
    );

    app.get(
      '/windows',
      {
        config: { permission: 'windows.read' },
        schema: {
          summary: 'Devices with maintenance windows of their own, by device id',
          tags: ['devices'],
          querystring: WindowsListQuery,
          response: withErrors({ 200: WindowsListReply }),
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 100;
        const page = await c.store.deviceWindows.list({
          limit,
          ...(request.query.after === undefined ? {} : { after: request.query.after }),
        });
        const visible = await ofVisibleDevices(c, request, page);
        return {
          windows: visible.map(deviceWindowsJson),
          next: page.length === limit ? page[page.length - 1]!.deviceId : null,
        };
      },
    );
  };

/** The device's side: report its own windows, defer an offered update. */
export const deviceWindowApi =
  (c: ServerContext): FastifyPluginAsyncTypebox =>
  async (app) => {
    const checkParts = validatorCompiler([]);

    app.put(
      '/windows',
      {
        schema: {
          summary: 'Report the maintenance windows this device may be updated in (they replace earlier ones)',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          body: DeviceWindowsBody,
          response: withErrors({ 200: DeviceWindowsReply }),
        },
        validatorCompiler: (route) => (route.httpPart === 'body' ? () => true : checkParts(route)),
      },
      async (request) => {
        const deviceId = await authenticateDevice(c, request);
        const windows = windowsOf(request.body);
        const set = await c.store.deviceWindows.set(
          deviceId,
          windows,
          'device',
          `device:${deviceId}`,
          c.clock.now(),
        );
        return {
          device_id: deviceId,
          windows: deviceWindowsJson(set),
          resolved: resolvedJson({ source: 'device', from: [], windows }),
          deferrals: [],
        };
      },
    );

    app.post(
      '/updates/:id/defer',
      {
        schema: {
          summary:
            'Put an offered soft update off (default 1h), within its rollout budget; 409 once the budget is spent',
          tags: ['device'],
          security: [{ deviceCredential: [] }],
          params: UpdateParams,
          body: DeferBody,
          response: withErrors({ 200: DeferReply }),
        },
      },
      async (request) => {
        const deviceId = await authenticateDevice(c, request);
        const text = request.body?.for;
        const forMs =
          text === undefined ? DEFAULT_DEFERRAL_MS : parseDuration(text, 'for', DEVICE_DEFERRAL_MAX_MS);
        if (forMs <= 0) throw new FleetError('VALIDATION', 'for: must be longer than 0', { field: 'for' });
        const deferral = await c.store.deviceWindows.defer(deviceId, request.params.id, forMs, c.clock.now());
        return deferralJson(deferral);
      },
    );
  };
