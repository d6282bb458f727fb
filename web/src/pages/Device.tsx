/** One device: facts, tags, telemetry, its status history and every update it has had. */
import { ApiError, api, withQuery } from '../api';
import { Badge, Card, ErrorBox, Facts, Loading } from '../components/common';
import { Sparkline } from '../components/Sparkline';
import { formatAgo, formatInZone, formatTime } from '../format';
import { useApi } from '../hooks';
import { href } from '../router';
import type { Device, DeviceInventory, DeviceTelemetrySeries, DeviceUpdate, FleetEvent } from '../types';

export function DevicePage({ id }: { id: string }) {
  const device = useApi(
    (signal) => api<Device>(`/api/v1/devices/${encodeURIComponent(id)}`, { signal }),
    [id],
  );
  const history = useApi(
    (signal) =>
      api<{ events: FleetEvent[] }>(
        withQuery('/api/v1/events/recent', { device: id, type: 'device.', limit: 200 }),
        {
          signal,
        },
      ),
    [id],
  );
  const updates = useApi(
    (signal) =>
      api<{ updates: DeviceUpdate[] }>(withQuery('/api/v1/updates', { device: id, limit: 1000 }), { signal }),
    [id],
  );

  const series = useApi(
    (signal) =>
      api<DeviceTelemetrySeries>(
        withQuery(`/api/v1/devices/${encodeURIComponent(id)}/telemetry`, {
          resolution: 'hourly',
          since: '7d',
        }),
        { signal },
      ),
    [id],
  );
  // 404 until the device has reported one: shown as "none yet", not as an error.
  const inventory = useApi(
    (signal) =>
      api<DeviceInventory>(`/api/v1/devices/${encodeURIComponent(id)}/inventory`, { signal }).catch(
        (error: unknown) => {
          if (error instanceof ApiError && error.status === 404) return null;
          throw error;
        },
      ),
    [id],
  );

  if (device.error)
    return (
      <div class="page">
        <p>
          <a href={href('devices')}>← Devices</a>
        </p>
        <ErrorBox error={device.error} />
      </div>
    );
  if (!device.data) return <Loading />;
  const d = device.data;
  const t = d.telemetry;
  const metrics = Object.entries(t.metrics);
  return (
    <div class="page">
      <p>
        <a href={href('devices')}>← Devices</a>
      </p>
      <h1>
        {d.name} <Badge value={d.status} />
      </h1>
      <p class="mono muted">{d.id}</p>
      <div class="grid">
        <Card title="Facts">
          <Facts
            rows={[
              [
                'Status',
                d.connectivity_class ? (
                  <span data-testid="connectivity-class">
                    {d.status} (class {d.connectivity_class.name}: offline after{' '}
                    {shortSeconds(d.connectivity_class.offline_after_sec)})
                  </span>
                ) : (
                  d.status
                ),
              ],
              ['Firmware', <span class="mono">{d.firmware_version ?? '—'}</span>],
              ['Hardware', d.hardware_type],
              ['Customer', d.customer],
              ['Location', d.location],
              ['Time zone', d.timezone],
              [
                'Last seen',
                d.last_seen ? (
                  <span>
                    {formatTime(d.last_seen, true)} ({formatAgo(d.last_seen)})
                  </span>
                ) : (
                  'never'
                ),
              ],
              [
                'Local time at the device now',
                d.timezone ? formatInZone(new Date().toISOString(), d.timezone) : '—',
              ],
              ['Registered', formatTime(d.created_at)],
              ['Credential', d.enrolled ? 'issued' : 'none'],
              ...(d.decommissioned_at
                ? [['Decommissioned', formatTime(d.decommissioned_at)] as [string, string]]
                : []),
            ]}
          />
        </Card>
        <Card title="Tags">
          {Object.keys(d.tags).length === 0 ? (
            <p class="muted">No tags.</p>
          ) : (
            <Facts
              rows={Object.entries(d.tags).map(([k, v]) => [
                k,
                <a href={href('devices', { filter: `tag.${k}=${JSON.stringify(v)}` })}>{v}</a>,
              ])}
            />
          )}
        </Card>
        {/* Absent for a role without config.read; null when no configuration document applies. */}
        {d.config === undefined ? null : (
          <Card title="Configuration">
            {d.config === null ? (
              <p class="muted">No configuration document applies to this device.</p>
            ) : (
              <Facts
                rows={[
                  ['Desired version', <span class="mono">{d.config.desired_version}</span>],
                  ['Applied version', <span class="mono">{d.config.applied_version ?? 'none yet'}</span>],
                  [
                    'Drift',
                    d.config.drift ? (
                      <a href={href('devices', { filter: 'config.drift = true' })} data-testid="config-drift">
                        <Badge value="drift" kind="offline" />
                      </a>
                    ) : (
                      <span data-testid="config-drift">none</span>
                    ),
                  ],
                ]}
              />
            )}
          </Card>
        )}
        <Card title="Telemetry">
          <Facts
            rows={[
              ['Battery', t.battery === null ? '—' : `${t.battery}%`],
              ['Signal', t.signal_strength === null ? '—' : `${t.signal_strength} dBm`],
              [
                'Position',
                t.lat === null || t.lon === null ? '—' : `${t.lat.toFixed(4)}, ${t.lon.toFixed(4)}`,
              ],
              ["Device's own clock (last heartbeat)", t.device_time ?? '—'],
              ...metrics.map(([k, v]) => [`metric ${k}`, String(v)] as [string, string]),
            ]}
          />
        </Card>
        <Card title="Metrics over the last 7 days (hourly)" wide>
          {series.error ? (
            <ErrorBox error={series.error} />
          ) : !series.data ? (
            <Loading />
          ) : series.data.series.length === 0 ? (
            <p class="muted">No telemetry reported yet.</p>
          ) : (
            <div class="sparklines">
              {series.data.series.map((s) => (
                <Sparkline key={s.name} name={s.name} points={s.points} />
              ))}
            </div>
          )}
        </Card>
        <Card title="Inventory" wide>
          {inventory.error ? (
            <ErrorBox error={inventory.error} />
          ) : inventory.data === undefined ? (
            <Loading />
          ) : !inventory.data ? (
            <p class="muted">No inventory reported yet.</p>
          ) : (
            <InventoryView inventory={inventory.data} />
          )}
        </Card>
        <Card title="Status history" wide>
          {history.error ? (
            <ErrorBox error={history.error} />
          ) : !history.data ? (
            <Loading />
          ) : (
            <EventTable events={history.data.events} zone={d.timezone} />
          )}
        </Card>
        <Card title="Updates" wide>
          {updates.error ? (
            <ErrorBox error={updates.error} />
          ) : !updates.data ? (
            <Loading />
          ) : (
            <UpdateTable updates={updates.data.updates} />
          )}
        </Card>
      </div>
    </div>
  );
}

function InventoryView({ inventory }: { inventory: DeviceInventory }) {
  return (
    <div data-testid="inventory">
      <Facts
        rows={[
          ['OS', inventory.os ?? '—'],
          ['Kernel', <span class="mono">{inventory.kernel ?? '—'}</span>],
          ['Reported', formatTime(inventory.reported_at, true)],
          ...inventory.interfaces.map(
            (i) => [`Interface ${i.name}`, `${i.mac ?? ''} ${i.addresses.join(' ')}`] as [string, string],
          ),
        ]}
      />
      <details>
        <summary>{inventory.packages.length} installed packages</summary>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Package</th>
                <th scope="col">Version</th>
              </tr>
            </thead>
            <tbody>
              {inventory.packages.map((p) => (
                <tr key={p.name}>
                  <td class="mono">{p.name}</td>
                  <td class="mono">{p.version}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </div>
  );
}

function EventTable({ events, zone }: { events: FleetEvent[]; zone: string | null }) {
  if (events.length === 0) return <p class="muted">No device events yet.</p>;
  return (
    <div class="table-wrap">
      <table data-testid="status-history">
        <thead>
          <tr>
            <th scope="col">When (your time)</th>
            <th scope="col">Device local time</th>
            <th scope="col">Event</th>
            <th scope="col">Change</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id}>
              <td>{formatTime(e.at, true)}</td>
              <td>{formatInZone(e.at, zone)}</td>
              <td class="mono">{e.type}</td>
              <td>{describeChange(e)}</td>
              <td>{e.reason ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `{from: 'online', to: 'offline'}` → "online → offline"; other data as key=value. */
function describeChange(e: FleetEvent): string {
  const { from, to, ...rest } = e.data as { from?: unknown; to?: unknown };
  const parts =
    from !== undefined || to !== undefined ? [`${String(from ?? '—')} → ${String(to ?? '—')}`] : [];
  for (const [k, v] of Object.entries(rest))
    parts.push(`${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return parts.join(', ') || '—';
}

export function UpdateTable({ updates }: { updates: DeviceUpdate[] }) {
  if (updates.length === 0) return <p class="muted">No updates.</p>;
  return (
    <div class="table-wrap">
      <table data-testid="updates">
        <thead>
          <tr>
            <th scope="col">Update</th>
            <th scope="col">Device</th>
            <th scope="col">State</th>
            <th scope="col">Action</th>
            <th scope="col">From</th>
            <th scope="col">Rollout</th>
            <th scope="col" class="num">
              Attempts
            </th>
            <th scope="col">Error</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {updates.map((u) => (
            <tr key={u.id}>
              <td class="mono small">{u.id}</td>
              <td>
                <a class="mono" href={href('devices', u.device_id)}>
                  {u.device_id}
                </a>
              </td>
              <td>
                <Badge value={u.state} />
                {u.progress !== null && u.state === 'downloading' ? ` ${u.progress}%` : ''}
              </td>
              <td>{u.action}</td>
              <td class="mono">{u.from_version ?? '—'}</td>
              <td>
                {u.rollout_id ? <a href={href('rollouts', u.rollout_id)}>{u.rollout_id}</a> : 'assigned'}
              </td>
              <td class="num">{u.attempts}</td>
              <td>{u.error ?? '—'}</td>
              <td>{formatTime(u.updated_at, true)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** 10800 → "3h", 90 → "90s": a connectivity class's threshold (docs/connectivity.md). */
function shortSeconds(sec: number): string {
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
  ] as const) {
    if (sec % size === 0) return `${sec / size}${unit}`;
  }
  return `${sec}s`;
}
