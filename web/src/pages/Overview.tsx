/**
 * Fleet overview: online share now and over time, counts by status, firmware distribution (and how far
 * behind the newest each version is), a breakdown by any tag key, silent devices and hardware types.
 */
import type { ChartConfiguration } from 'chart.js';
import { useMemo, useState } from 'preact/hooks';
import { compareVersions, parseVersionLenient } from '../../../src/core/semver.js';
import { api, withQuery } from '../api';
import { ChartView, STATUS_COLORS } from '../components/Chart';
import { Card, ErrorBox, Loading } from '../components/common';
import { formatNumber, formatPercent, formatTime, onlineShare } from '../format';
import { useApi } from '../hooks';
import { href } from '../router';
import { DEVICE_STATUSES, type DevicePage, type FleetStats, type HistorySnapshot } from '../types';

const RANGES = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
] as const;

export function OverviewPage() {
  const [tagKey, setTagKey] = useState('region');
  const [since, setSince] = useState('24h');
  const stats = useApi(
    (signal) => api<FleetStats>(withQuery('/api/v1/fleet/stats', { tag: tagKey }), { signal }),
    [tagKey],
  );
  const history = useApi(
    (signal) =>
      api<{ snapshots: HistorySnapshot[] }>(withQuery('/api/v1/fleet/history', { since }), { signal }),
    [since],
  );
  // Tag keys are free-form; offer the ones a sample of the registry uses.
  const sample = useApi((signal) => api<DevicePage>('/api/v1/devices?limit=500', { signal }), []);
  const tagKeys = useMemo(() => {
    const keys = new Set<string>(['region']);
    for (const d of sample.data?.devices ?? []) for (const k of Object.keys(d.tags)) keys.add(k);
    return [...keys].sort();
  }, [sample.data]);

  if (stats.error) return <ErrorBox error={stats.error} />;
  if (!stats.data) return <Loading />;
  const s = stats.data;
  const share = onlineShare(s.by_status, s.total);
  return (
    <div class="page">
      <h1>Fleet overview</h1>
      <p class="muted small">As of {formatTime(s.at, true)}</p>
      <section class="tiles" aria-label="Fleet summary">
        <Tile label="Devices" value={formatNumber(s.total)} testid="total" link={href('devices')} />
        <Tile label="Online now" value={formatPercent(share)} testid="online-share" />
        {DEVICE_STATUSES.map((status) => (
          <Tile
            key={status}
            label={status}
            value={formatNumber(s.by_status[status] ?? 0)}
            testid={`status-${status}`}
            link={href('devices', { filter: `status=${status}` })}
            color={STATUS_COLORS[status]}
          />
        ))}
        <Tile
          label="Silent > 24 h"
          value={formatNumber(s.silent.over_24h)}
          testid="silent-24h"
          link={href('devices', { filter: 'status != decommissioned and last_seen < 24h ago' })}
        />
        <Tile
          label="Silent > 30 days"
          value={formatNumber(s.silent.over_30d)}
          testid="silent-30d"
          link={href('devices', { filter: 'status != decommissioned and last_seen < 30d ago' })}
        />
      </section>
      <div class="grid">
        <Card title="Online over time" span2>
          <div class="toolbar">
            <label for="history-range">Range</label>
            <select id="history-range" value={since} onChange={(e) => setSince(e.currentTarget.value)}>
              {RANGES.map(([v, l]) => (
                <option key={v} value={v}>
                  {l}
                </option>
              ))}
            </select>
          </div>
          {history.error ? (
            <ErrorBox error={history.error} />
          ) : !history.data ? (
            <Loading />
          ) : history.data.snapshots.length === 0 ? (
            <p class="muted">No history yet: the server records the fleet's counts every five minutes.</p>
          ) : (
            <HistoryChart snapshots={history.data.snapshots} />
          )}
        </Card>
        <Card title="Devices by status">
          <StatusChart stats={s} />
        </Card>
        <Card title="Firmware" wide>
          <FirmwareTable stats={s} />
        </Card>
        <Card title="By tag">
          <div class="toolbar">
            <label for="tag-key">Tag key</label>
            <input
              id="tag-key"
              list="tag-keys"
              value={tagKey}
              onChange={(e) => setTagKey(e.currentTarget.value.trim() || 'region')}
            />
            <datalist id="tag-keys">
              {tagKeys.map((k) => (
                <option key={k} value={k} />
              ))}
            </datalist>
          </div>
          <CountTable
            label={`Devices by tag ${tagKey}`}
            rows={Object.entries(s.tags[tagKey] ?? {}).map(([value, count]) => ({
              key: value,
              label: value,
              count,
              link: href('devices', { filter: `tag.${tagKey}=${quote(value)}` }),
            }))}
            total={s.total}
            empty={`No device has the tag ${tagKey}.`}
          />
        </Card>
        <Card title="Hardware types">
          <CountTable
            label="Devices by hardware type"
            rows={s.hardware.map((h) => ({
              key: h.hardware_type ?? '(none)',
              label: h.hardware_type ?? '(none)',
              count: h.count,
              link: h.hardware_type
                ? href('devices', { filter: `hardware=${quote(h.hardware_type)}` })
                : undefined,
            }))}
            total={s.total}
            empty="No devices."
          />
        </Card>
      </div>
    </div>
  );
}

/** A filter value in quotes when it is not a bare word of the filter language. */
const quote = (v: string) => (/^[A-Za-z0-9\-_.:/@+~^]+$/.test(v) ? v : JSON.stringify(v));

function Tile(props: {
  label: string;
  value: string;
  testid: string;
  link?: string;
  color?: string | undefined;
}) {
  const body = (
    <>
      <span class="tile-value" data-testid={props.testid}>
        {props.value}
      </span>
      <span class={props.color ? 'tile-label status' : 'tile-label'}>
        {props.color && <span class="dot" style={{ background: props.color }} aria-hidden="true" />}
        {props.label}
      </span>
    </>
  );
  return props.link ? (
    <a class="tile" href={props.link}>
      {body}
    </a>
  ) : (
    <div class="tile">{body}</div>
  );
}

function HistoryChart({ snapshots }: { snapshots: HistorySnapshot[] }) {
  const config = useMemo<ChartConfiguration>(
    () => ({
      type: 'line',
      data: {
        labels: snapshots.map((p) => formatTime(p.at)),
        datasets: [
          {
            label: 'Online %',
            // An empty fleet has no online share: a gap in the line, not a drop to 0%.
            data: snapshots.map((p) => onlineShare(p.by_status, p.total)),
            borderColor: STATUS_COLORS.online,
            backgroundColor: 'rgba(31, 157, 85, 0.15)',
            fill: true,
            // Points only while there are few (a fresh server has one snapshot): a lone point has no line.
            pointRadius: snapshots.length < 30 ? 3 : 0,
            tension: 0.2,
          },
        ],
      },
      options: {
        scales: {
          y: { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } },
          x: { ticks: { maxTicksLimit: 8 } },
        },
        plugins: { legend: { display: false } },
      },
    }),
    [snapshots],
  );
  const last = snapshots.at(-1);
  return (
    <ChartView
      config={config}
      label={`Online share over time, ${snapshots.length} points; latest ${formatPercent(last ? onlineShare(last.by_status, last.total) : null)}`}
    />
  );
}

function StatusChart({ stats }: { stats: FleetStats }) {
  const config = useMemo<ChartConfiguration>(
    () => ({
      type: 'doughnut',
      data: {
        labels: [...DEVICE_STATUSES],
        datasets: [
          {
            data: DEVICE_STATUSES.map((st) => stats.by_status[st] ?? 0),
            backgroundColor: DEVICE_STATUSES.map((st) => STATUS_COLORS[st] ?? '#999'),
          },
        ],
      },
      options: { plugins: { legend: { position: 'right' } } },
    }),
    [stats],
  );
  return (
    <ChartView
      config={config}
      label={DEVICE_STATUSES.map((st) => `${st} ${stats.by_status[st] ?? 0}`).join(', ')}
    />
  );
}

function FirmwareTable({ stats }: { stats: FleetStats }) {
  // Newest first by semantic version; text that is not a version (or none) goes last.
  const versions = stats.firmware
    .filter((f) => f.version !== null && parseVersionLenient(f.version))
    .sort((a, b) => compareVersions(b.version!, a.version!));
  const others = stats.firmware.filter((f) => f.version === null || !parseVersionLenient(f.version));
  const newest = versions[0];
  const behind = stats.total - (stats.by_status.decommissioned ?? 0) - (newest?.count ?? 0);
  const config = useMemo<ChartConfiguration>(
    () => ({
      type: 'bar',
      data: {
        labels: [...versions, ...others].map((f) => f.version ?? '(none)'),
        datasets: [
          {
            label: 'Devices',
            data: [...versions, ...others].map((f) => f.count),
            backgroundColor: '#2563eb',
          },
        ],
      },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
    }),
    [stats],
  );
  return (
    <div class="split">
      <div>
        {newest && (
          <p data-testid="firmware-behind">
            <strong>{formatNumber(Math.max(0, behind))}</strong> devices are not on the newest version,{' '}
            <span class="mono">{newest.version}</span>.
          </p>
        )}
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Firmware versions</caption>
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col" class="num">
                  Devices
                </th>
                <th scope="col" class="num">
                  Versions behind newest
                </th>
              </tr>
            </thead>
            <tbody>
              {versions.map((f, i) => (
                <tr key={f.version}>
                  <td>
                    <a class="mono" href={href('devices', { filter: `firmware=${f.version}` })}>
                      {f.version}
                    </a>
                  </td>
                  <td class="num">{formatNumber(f.count)}</td>
                  <td class="num">{i === 0 ? 'newest' : i}</td>
                </tr>
              ))}
              {others.map((f) => (
                <tr key={f.version ?? '(none)'}>
                  <td class="mono">{f.version ?? '(none)'}</td>
                  <td class="num">{formatNumber(f.count)}</td>
                  <td class="num">—</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <ChartView
        config={config}
        label={`Devices per firmware version: ${[...versions, ...others].map((f) => `${f.version ?? 'none'} ${f.count}`).join(', ')}`}
      />
    </div>
  );
}

interface CountRow {
  key: string;
  label: string;
  count: number;
  link?: string | undefined;
}

function CountTable({
  rows,
  total,
  label,
  empty,
}: {
  rows: CountRow[];
  total: number;
  label: string;
  empty: string;
}) {
  if (rows.length === 0) return <p class="muted">{empty}</p>;
  const sorted = [...rows].sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">{label}</caption>
        <thead>
          <tr>
            <th scope="col">Value</th>
            <th scope="col" class="num">
              Devices
            </th>
            <th scope="col">Share</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((r) => (
            <tr key={r.key}>
              <td>{r.link ? <a href={r.link}>{r.label}</a> : r.label}</td>
              <td class="num">{formatNumber(r.count)}</td>
              <td>
                <span class="meter" aria-hidden="true">
                  <span style={{ width: `${total ? (100 * r.count) / total : 0}%` }} />
                </span>
                <span class="small muted">{formatPercent(total ? (100 * r.count) / total : null, 0)}</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
