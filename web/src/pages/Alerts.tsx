/**
 * Alerts: what the alert rules raised (pending, firing, recovering) as the server last evaluated them, the
 * rules in force, and the recent `alert.firing`/`alert.resolved` events. The server evaluates on the engine's
 * tick; the page reloads when an alert event arrives on the stream, and every 15 seconds besides, so a
 * pending alert's progress shows without one.
 */
import { useEffect } from 'preact/hooks';
import type { AlertListJson } from '../../../src/protocol/alerts.js';
import { api, withQuery } from '../api';
import { Badge, Card, ErrorBox, Loading } from '../components/common';
import { openEventStream } from '../event-stream';
import { formatAgo, formatTime } from '../format';
import { useApi, useThrottled } from '../hooks';
import { href } from '../router';
import type { FleetEvent } from '../types';

/** Matches the engine's tick: the alerts cannot change faster than that. */
const REFRESH_MS = 15_000;

export function AlertsPage() {
  const alerts = useApi((signal) => api<AlertListJson>('/api/v1/alerts', { signal }), []);
  const history = useApi(
    (signal) =>
      api<{ events: FleetEvent[] }>(withQuery('/api/v1/events/recent', { type: 'alert.', limit: 50 }), {
        signal,
      }),
    [],
  );
  const reload = useThrottled(() => {
    alerts.reload();
    history.reload();
  }, 1_000);
  useEffect(() => {
    const timer = setInterval(alerts.reload, REFRESH_MS);
    const stop = openEventStream({
      query: { type: 'alert.' },
      after: undefined,
      onEvent: reload,
    });
    return () => {
      clearInterval(timer);
      stop();
    };
  }, []);

  if (alerts.error) return <ErrorBox error={alerts.error} />;
  if (!alerts.data) return <Loading />;
  const { alerts: current, rules, evaluated } = alerts.data;
  return (
    <div class="page">
      <h1>Alerts</h1>
      {!evaluated ? (
        <p class="muted" data-testid="alerts-off">
          This server runs without alert rules: start it with <span class="mono">--alert-rules FILE</span>{' '}
          (docs/alerts.md).
        </p>
      ) : null}
      <div class="grid">
        <Card title={`Now (${current.length})`} wide>
          {current.length === 0 ? (
            <p class="muted">No alert is pending, firing or recovering.</p>
          ) : (
            <table data-testid="alerts-now">
              <thead>
                <tr>
                  <th scope="col">Severity</th>
                  <th scope="col">Alert</th>
                  <th scope="col">State</th>
                  <th scope="col">Since</th>
                  <th scope="col">Value</th>
                  <th scope="col">Threshold</th>
                  <th scope="col">Summary</th>
                </tr>
              </thead>
              <tbody>
                {current.map((a) => (
                  <tr key={a.key} data-alert={a.key}>
                    <td>
                      <Badge value={a.severity} kind={`severity-${a.severity}`} />
                    </td>
                    <td class="mono">
                      {a.rule}
                      {a.rollout ? (
                        <>
                          {' '}
                          (<a href={href('rollouts', a.rollout)}>{a.rollout}</a>)
                        </>
                      ) : null}
                    </td>
                    <td data-testid="alert-state">{a.state}</td>
                    <td title={formatTime(a.since, true)}>{formatAgo(a.since)}</td>
                    <td class="num" data-testid="alert-value">
                      {a.value ?? '—'}
                    </td>
                    <td class="num">{a.threshold ?? '—'}</td>
                    <td>{a.summary ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Recently fired and resolved" wide>
          {history.error ? (
            <ErrorBox error={history.error} />
          ) : !history.data ? (
            <Loading />
          ) : history.data.events.length === 0 ? (
            <p class="muted">No alert has fired yet.</p>
          ) : (
            <table data-testid="alerts-history">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Event</th>
                  <th scope="col">Alert</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {history.data.events.map((e) => (
                  <tr key={e.id}>
                    <td>{formatTime(e.at, true)}</td>
                    <td class="mono">{e.type}</td>
                    <td class="mono">{String((e.data as { key?: unknown } | null)?.key ?? '')}</td>
                    <td>{e.reason ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title={`Rules in force (${rules.length})`} wide>
          {rules.length === 0 ? (
            <p class="muted">No rules.</p>
          ) : (
            <table data-testid="alert-rules">
              <thead>
                <tr>
                  <th scope="col">Rule</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Severity</th>
                  <th scope="col">For</th>
                  <th scope="col">Recover for</th>
                  <th scope="col">Summary</th>
                </tr>
              </thead>
              <tbody>
                {rules.map((r) => (
                  <tr key={r.name}>
                    <td class="mono">{r.name}</td>
                    <td class="mono">{r.kind}</td>
                    <td>{r.severity}</td>
                    <td>{r.for}</td>
                    <td>{r.recover_for}</td>
                    <td>{r.summary ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
      </div>
    </div>
  );
}
