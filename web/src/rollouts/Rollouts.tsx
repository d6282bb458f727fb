/** Every rollout with its state and progress. */
import { api } from '../api';
import { Badge, ErrorBox, Loading } from '../components/common';
import { formatPercent, formatTime } from '../format';
import { useApi } from '../hooks';
import { href } from '../router';
import { can } from '../session';
import type { Rollout } from '../types';
import { finished } from './shared';

export function RolloutsPage() {
  const list = useApi((signal) => api<{ rollouts: Rollout[] }>('/api/v1/rollouts', { signal }), []);
  return (
    <div class="page">
      <div class="title-row">
        <h1>Rollouts</h1>
        {!list.error && can('rollouts.create') && (
          <a class="button primary" href={href('rollouts', 'new')}>
            New rollout
          </a>
        )}
      </div>
      {list.error ? (
        <ErrorBox error={list.error} />
      ) : !list.data ? (
        <Loading />
      ) : list.data.rollouts.length === 0 ? (
        <p class="muted">No rollouts yet.</p>
      ) : (
        <div class="table-wrap">
          <table data-testid="rollouts">
            <caption class="sr-only">Rollouts</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Strategy</th>
                <th scope="col">Release</th>
                <th scope="col">Progress</th>
                <th scope="col" class="num">
                  Success
                </th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.rollouts.map((r) => {
                const done = finished(r.totals.counts);
                const pct = r.totals.targets ? (100 * done) / r.totals.targets : 0;
                return (
                  <tr key={r.id}>
                    <td>
                      <a href={href('rollouts', r.id)}>{r.name}</a>
                    </td>
                    <td>
                      <Badge value={r.state} />
                    </td>
                    <td>{r.strategy.replace('_', ' ')}</td>
                    <td class="mono">{r.release}</td>
                    <td>
                      <progress
                        max={100}
                        value={pct}
                        aria-label={`${r.name}: ${done} of ${r.totals.targets} finished`}
                      />{' '}
                      <span class="small">
                        {done}/{r.totals.targets}
                      </span>
                    </td>
                    <td class="num">{formatPercent(r.totals.success_rate)}</td>
                    <td>{formatTime(r.created_at)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
