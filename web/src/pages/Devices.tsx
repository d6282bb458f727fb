/**
 * The registry as a table, a page at a time: the server pages by cursor (keyset), so the hundredth page of
 * 100,000 devices costs what the first does and the browser never holds more than one page.
 */
import { useState } from 'preact/hooks';
import { api, withQuery } from '../api';
import { ApprovalQueue } from '../components/ApprovalQueue';
import { Badge, ErrorBox } from '../components/common';
import { FilterInput } from '../components/FilterInput';
import { ImportDevices } from '../components/ImportDevices';
import { formatAgo, formatNumber, formatTime } from '../format';
import { useApi } from '../hooks';
import { href, replaceQuery } from '../router';
import { can } from '../session';
import type { DevicePage } from '../types';

const SORTABLE = [
  ['id', 'ID'],
  ['name', 'Name'],
  ['status', 'Status'],
  ['firmware', 'Firmware'],
  ['hardware', 'Hardware'],
  ['last_seen', 'Last seen'],
  ['location', 'Location'],
] as const;
const SORT_FIELDS = new Set(['id', 'name', 'firmware', 'hardware', 'last_seen', 'created']);
const PAGE_SIZES = [25, 50, 100, 250];

export function DevicesPage({ query }: { query: URLSearchParams }) {
  const [text, setText] = useState(query.get('filter') ?? '');
  // The table follows the last expression the server accepted, so a half-typed one never blanks it.
  const [filter, setFilter] = useState(query.get('filter') ?? '');
  const [count, setCount] = useState<number>();
  const sort = SORT_FIELDS.has(query.get('sort') ?? '') ? query.get('sort')! : 'id';
  const order = query.get('order') === 'desc' ? 'desc' : 'asc';
  const [limit, setLimit] = useState(50);
  // The cursors of the pages before this one ("previous" pops, "next" pushes), for this filter and order
  // only: another view starts again at its first page.
  const view = JSON.stringify([filter, sort, order, limit]);
  const [paging, setPaging] = useState<{ view: string; cursors: string[] }>({ view, cursors: [] });
  const cursors = paging.view === view ? paging.cursors : [];
  const setCursors = (next: (c: string[]) => string[]) => setPaging({ view, cursors: next(cursors) });
  const cursor = cursors.at(-1);

  const page = useApi(
    (signal) =>
      api<DevicePage>(withQuery('/api/v1/devices', { filter, sort, order, limit, cursor }), { signal }),
    [filter, sort, order, limit, cursor],
  );

  const setSort = (field: string) => {
    const nextOrder = field === sort && order === 'asc' ? 'desc' : 'asc';
    location.hash = href('devices', { filter: filter || undefined, sort: field, order: nextOrder });
  };
  const first = cursors.length * limit + 1;
  const rows = page.data?.devices ?? [];
  return (
    <div class="page">
      <h1>Devices</h1>
      {/* Hidden from a role that may not change devices: the server would refuse it anyway. */}
      {can('devices.write') && <ApprovalQueue onDecided={page.reload} />}
      {can('devices.write') && <ImportDevices onImported={page.reload} />}
      <FilterInput
        id="device-filter"
        value={text}
        onInput={setText}
        onValid={(valid, n) => {
          setCount(n);
          setFilter(valid);
          replaceQuery({ filter: valid || undefined });
        }}
      />
      <div class="toolbar">
        <span aria-live="polite" data-testid="page-range">
          {rows.length === 0
            ? 'No devices'
            : `${formatNumber(first)}–${formatNumber(first + rows.length - 1)}${count === undefined ? '' : ` of ${formatNumber(count)}`}`}
        </span>
        <span class="spacer" />
        <label for="page-size">Per page</label>
        <select id="page-size" value={limit} onChange={(e) => setLimit(Number(e.currentTarget.value))}>
          {PAGE_SIZES.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
        <button
          type="button"
          disabled={cursors.length === 0}
          onClick={() => setCursors((c) => c.slice(0, -1))}
        >
          ← Previous
        </button>
        <button
          type="button"
          disabled={!page.data?.next_cursor}
          onClick={() => page.data?.next_cursor && setCursors((c) => [...c, page.data!.next_cursor!])}
        >
          Next →
        </button>
      </div>
      {page.error && <ErrorBox error={page.error} />}
      <div class="table-wrap" aria-busy={page.loading ? 'true' : 'false'}>
        <table class="devices">
          <caption class="sr-only">
            Devices, sorted by {sort} {order === 'asc' ? 'ascending' : 'descending'}
          </caption>
          <thead>
            <tr>
              {SORTABLE.map(([field, label]) => {
                const sortField = field === 'status' || field === 'location' ? null : field;
                const active = sortField === sort;
                return (
                  <th
                    key={field}
                    scope="col"
                    aria-sort={active ? (order === 'asc' ? 'ascending' : 'descending') : undefined}
                  >
                    {sortField ? (
                      <button type="button" class="sort" onClick={() => setSort(sortField)}>
                        {label}
                        <span aria-hidden="true">{active ? (order === 'asc' ? ' ▲' : ' ▼') : ''}</span>
                      </button>
                    ) : (
                      label
                    )}
                  </th>
                );
              })}
              <th scope="col">Client</th>
              <th scope="col">Tags</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={d.id}>
                <td>
                  <a class="mono" href={href('devices', d.id)}>
                    {d.id}
                  </a>
                </td>
                <td>{d.name}</td>
                <td>
                  <Badge value={d.status} />
                </td>
                <td class="mono">{d.firmware_version ?? '—'}</td>
                <td>{d.hardware_type ?? '—'}</td>
                <td title={formatTime(d.last_seen, true)}>{formatAgo(d.last_seen)}</td>
                <td>{d.location ?? '—'}</td>
                {/* FleetD's agent, or SWUpdate or mender-client served as they are (docs/clients/). */}
                <td>{d.tags.client ?? 'agent'}</td>
                <td class="tags">
                  {Object.entries(d.tags)
                    .slice(0, 4)
                    .map(([k, v]) => (
                      <span key={k} class="tag">
                        {k}={v}
                      </span>
                    ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
