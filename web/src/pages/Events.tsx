/**
 * The event log, live: the newest events first (GET /events/recent), then the stream from the newest one on,
 * with the same filters (type prefix, device, rollout). Filters live in the link.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, withQuery } from '../api';
import { ErrorBox } from '../components/common';
import { openEventStream, type StreamState } from '../event-stream';
import { formatTime } from '../format';
import { useDebounced } from '../hooks';
import { href, replaceQuery } from '../router';
import type { FleetEvent } from '../types';

/** Kept in the page at most: the log itself is in the server, this is a window on its tail. */
const KEEP = 500;

export function EventsPage({ query }: { query: URLSearchParams }) {
  const [type, setType] = useState(query.get('type') ?? '');
  const [device, setDevice] = useState(query.get('device') ?? '');
  const [rollout, setRollout] = useState(query.get('rollout') ?? '');
  const filters = useDebounced({ type: type.trim(), device: device.trim(), rollout: rollout.trim() }, 300);
  const key = JSON.stringify(filters);
  const [events, setEvents] = useState<FleetEvent[]>([]);
  const [error, setError] = useState<Error>();
  const [state, setState] = useState<StreamState | 'paused'>('connecting');
  const [paused, setPaused] = useState(false);
  useEffect(() => {
    replaceQuery({
      type: filters.type || undefined,
      device: filters.device || undefined,
      rollout: filters.rollout || undefined,
    });
    if (paused) {
      setState('paused');
      return;
    }
    const controller = new AbortController();
    let stop: (() => void) | undefined;
    setError(undefined);
    api<{ events: FleetEvent[] }>(withQuery('/api/v1/events/recent', { ...filters, limit: 100 }), {
      signal: controller.signal,
    }).then(
      ({ events: recent }) => {
        setEvents(recent);
        stop = openEventStream({
          query: filters,
          after: recent[0]?.id ?? undefined,
          onEvent: (e) => setEvents((list) => [e, ...list].slice(0, KEEP)),
          onState: setState,
        });
      },
      (err: unknown) => {
        if (!controller.signal.aborted) setError(err as Error);
      },
    );
    return () => {
      controller.abort();
      stop?.();
    };
  }, [key, paused]);

  return (
    <div class="page">
      <h1>Events</h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="event-type">Type prefix</label>
          <input
            id="event-type"
            class="mono"
            value={type}
            placeholder="device.status"
            onInput={(e) => setType(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="event-device">Device</label>
          <input
            id="event-device"
            class="mono"
            value={device}
            placeholder="pos-nyc-001"
            onInput={(e) => setDevice(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="event-rollout">Rollout</label>
          <input
            id="event-rollout"
            class="mono"
            value={rollout}
            placeholder="ro_…"
            onInput={(e) => setRollout(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <span class={`live live-${state}`} role="status" data-testid="stream-state">
            {state === 'live'
              ? '● Live'
              : state === 'paused'
                ? 'Paused'
                : state === 'reconnecting'
                  ? 'Reconnecting…'
                  : 'Connecting…'}
          </span>
          <button type="button" onClick={() => setPaused((p) => !p)} aria-pressed={paused}>
            {paused ? 'Resume' : 'Pause'}
          </button>
        </div>
      </form>
      {error && <ErrorBox error={error} />}
      <div class="table-wrap">
        <table data-testid="events">
          <caption class="sr-only">Events, newest first</caption>
          <thead>
            <tr>
              <th scope="col" class="num">
                #
              </th>
              <th scope="col">When</th>
              <th scope="col">Type</th>
              <th scope="col">Device</th>
              <th scope="col">Rollout</th>
              <th scope="col">Actor</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.id}>
                <td class="num mono small">{e.id}</td>
                <td>{formatTime(e.at, true)}</td>
                <td class="mono">{e.type}</td>
                <td>
                  {e.device_id ? (
                    <a class="mono" href={href('devices', e.device_id)}>
                      {e.device_id}
                    </a>
                  ) : (
                    '—'
                  )}
                </td>
                <td>
                  {e.rollout_id ? (
                    <a class="mono" href={href('rollouts', e.rollout_id)}>
                      {e.rollout_id}
                    </a>
                  ) : (
                    '—'
                  )}
                </td>
                <td>{e.actor ?? '—'}</td>
                <td class="details">
                  {e.reason && <span>{e.reason} </span>}
                  {Object.keys(e.data).length > 0 && <code class="small">{JSON.stringify(e.data)}</code>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {events.length === 0 && <p class="muted">No events match.</p>}
      </div>
    </div>
  );
}
