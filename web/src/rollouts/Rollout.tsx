/**
 * One rollout, live: the stream of its events triggers a refetch (throttled, so a burst of a thousand status
 * reports costs one request a second). Phases by state, success rate against the gate's threshold, gate
 * decisions with reasons, ETA, failing devices, and the operator's actions behind a confirmation.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, withQuery } from '../api';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { Badge, Card, ErrorBox, Facts, Loading } from '../components/common';
import { openEventStream, type StreamState } from '../event-stream';
import { formatNumber, formatPercent, formatTime } from '../format';
import { useApi, useThrottled } from '../hooks';
import { UpdateTable } from '../pages/Device';
import { href } from '../router';
import { can } from '../session';
import { type DeviceUpdate, type Rollout, type RolloutPhase, UPDATE_STATES } from '../types';
import { EtaBand, ReachabilityNotice } from './Reachability';
import { StateBar } from './shared';

type Action = 'pause' | 'resume' | 'approve' | 'promote' | 'cancel' | 'rollback';

const ACTIONS: Record<Action, { label: string; explain: string; danger?: boolean }> = {
  pause: {
    label: 'Pause',
    explain: 'No further devices are offered the update; updates already started finish.',
  },
  resume: { label: 'Resume', explain: 'The rollout continues where it stopped, under the same gates.' },
  approve: {
    label: 'Approve next phase',
    explain: 'The current phase passed its gate; the next phase starts now.',
  },
  promote: {
    label: 'Promote',
    explain: 'Skip the rest of the current phase’s soak and gate and start the next phase now.',
    danger: true,
  },
  cancel: {
    label: 'Cancel',
    explain:
      'Updates not yet started are cancelled and the rollout ends. Devices already updated keep the release.',
    danger: true,
  },
  rollback: {
    label: 'Roll back',
    explain: 'Every device this rollout updated is sent back to the version it had before.',
    danger: true,
  },
};

/** The permission each action needs (as the server's rollout commands declare them). */
const NEEDS: Record<Action, string> = {
  pause: 'rollouts.control',
  resume: 'rollouts.control',
  cancel: 'rollouts.control',
  rollback: 'rollouts.control',
  approve: 'releases.approve',
  promote: 'releases.approve',
};

/** The actions the rollout's state allows and the signed-in role may take. */
function allowed(r: Rollout): Action[] {
  return possible(r).filter((a) => can(NEEDS[a]));
}

function possible(r: Rollout): Action[] {
  const phase = r.current_phase === null ? undefined : r.phases[r.current_phase];
  const out: Action[] = [];
  if (r.state === 'running' || r.state === 'scheduled') out.push('pause');
  if (r.state === 'paused' || r.state === 'halted') out.push('resume');
  if (phase?.gate?.decision === 'await_approval') out.push('approve');
  if (
    r.strategy === 'progressive' &&
    (r.state === 'running' || r.state === 'paused') &&
    r.current_phase !== null &&
    r.current_phase < r.phases.length - 1
  )
    out.push('promote');
  if (['draft', 'scheduled', 'running', 'paused', 'halted'].includes(r.state)) out.push('cancel');
  if (['running', 'paused', 'halted', 'completed'].includes(r.state)) out.push('rollback');
  return out;
}

export function RolloutPage({ id }: { id: string; tab?: string | undefined }) {
  const path = `/api/v1/rollouts/${encodeURIComponent(id)}`;
  const rollout = useApi((signal) => api<Rollout>(path, { signal }), [id]);
  const [stateFilter, setStateFilter] = useState('');
  const updates = useApi(
    (signal) =>
      api<{ updates: DeviceUpdate[] }>(withQuery(`${path}/updates`, { state: stateFilter, limit: 100 }), {
        signal,
      }),
    [id, stateFilter],
  );
  const [live, setLive] = useState<StreamState>('connecting');
  const refresh = useThrottled(() => {
    rollout.reload();
    updates.reload();
  }, 1000);
  useEffect(
    () => openEventStream({ query: { rollout: id }, onEvent: refresh, onState: setLive }),
    [id, refresh],
  );

  const [pending, setPending] = useState<Action>();
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string>();
  const act = async (action: Action) => {
    setBusy(true);
    setActionError(undefined);
    try {
      await api<Rollout>(`${path}/${action}`, { method: 'POST' });
      setPending(undefined);
      rollout.reload();
      updates.reload();
    } catch (error) {
      setActionError(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
    } finally {
      setBusy(false);
    }
  };

  if (rollout.error && !rollout.data)
    return (
      <div class="page">
        <p>
          <a href={href('rollouts')}>← Rollouts</a>
        </p>
        <ErrorBox error={rollout.error} />
      </div>
    );
  if (!rollout.data) return <Loading />;
  const r = rollout.data;
  const eta = r.eta;
  return (
    <div class="page">
      <p>
        <a href={href('rollouts')}>← Rollouts</a>
      </p>
      <div class="title-row">
        <h1>
          {r.name} <Badge value={r.state} />
        </h1>
        <span class={`live live-${live}`} role="status" data-testid="stream-state">
          {live === 'live' ? '● Live' : live === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}
        </span>
      </div>
      {r.reason && (
        <div class={r.state === 'halted' ? 'error-box' : 'notice'} role="status" data-testid="rollout-reason">
          {r.reason}
        </div>
      )}
      <div class="actions">
        {allowed(r).map((a) => (
          <button
            key={a}
            type="button"
            class={ACTIONS[a].danger ? 'danger' : ''}
            onClick={() => setPending(a)}
          >
            {ACTIONS[a].label}
          </button>
        ))}
      </div>
      {pending && (
        <ConfirmDialog
          title={`${ACTIONS[pending].label} “${r.name}”?`}
          confirmLabel={ACTIONS[pending].label}
          danger={ACTIONS[pending].danger ?? false}
          busy={busy}
          error={actionError}
          onConfirm={() => act(pending)}
          onClose={() => {
            setPending(undefined);
            setActionError(undefined);
          }}
        >
          <p>{ACTIONS[pending].explain}</p>
        </ConfirmDialog>
      )}
      <div class="grid">
        <Card title="Summary">
          <Facts
            rows={[
              ['Release', <span class="mono">{r.release}</span>],
              ['Strategy', r.strategy.replace('_', ' ')],
              [
                'Targets',
                <a href={href('devices', { filter: r.filter || undefined })}>
                  {formatNumber(r.totals.targets)} devices
                </a>,
              ],
              ['Filter', <code>{r.filter || '(whole fleet)'}</code>],
              ['Created', formatTime(r.created_at)],
              ['Started', formatTime(r.started_at)],
              ['Finished', formatTime(r.finished_at)],
            ]}
          />
        </Card>
        <Card title="Progress">
          <StateBar counts={r.totals.counts} total={r.totals.targets} label="All devices" />
          <Facts
            rows={[
              ['Success rate', formatPercent(r.totals.success_rate)],
              [
                'Throughput',
                r.throughput_per_hour === null
                  ? '—'
                  : `${formatNumber(Math.round(r.throughput_per_hour))} devices/hour`,
              ],
              ['Estimated finish', eta ? <EtaBand eta={eta} /> : '—'],
              ...(eta && eta.unknown_devices > 0
                ? [
                    [
                      'Devices without an estimate',
                      `${formatNumber(eta.unknown_devices)} (not expected within four weeks)`,
                    ] as [string, string],
                  ]
                : []),
            ]}
          />
        </Card>
        {eta && <ReachabilityNotice reachability={eta.reachability} />}
        <Card title="Phases" wide>
          {r.phases.length === 0 ? (
            <p class="muted">This strategy has no phases.</p>
          ) : (
            <ol class="phases" data-testid="phases">
              {r.phases.map((p, i) => (
                <PhaseView
                  key={p.name}
                  phase={p}
                  index={i}
                  current={r.current_phase === i}
                  eta={eta?.phases[i]}
                />
              ))}
            </ol>
          )}
        </Card>
        <Card title="Failing devices" wide>
          {r.failing.length === 0 ? (
            <p class="muted">None.</p>
          ) : (
            <div class="table-wrap">
              <table data-testid="failing">
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Error</th>
                    <th scope="col">When</th>
                  </tr>
                </thead>
                <tbody>
                  {r.failing.map((f) => (
                    <tr key={f.device_id}>
                      <td>
                        <a class="mono" href={href('devices', f.device_id)}>
                          {f.device_id}
                        </a>
                      </td>
                      <td>{f.error ?? '—'}</td>
                      <td>{formatTime(f.at, true)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
        <Card title="Device updates" wide>
          <div class="toolbar">
            <label for="update-state">State</label>
            <select
              id="update-state"
              value={stateFilter}
              onChange={(e) => setStateFilter(e.currentTarget.value)}
            >
              <option value="">any</option>
              {UPDATE_STATES.map((s) => (
                <option key={s} value={s}>
                  {s.replace('_', ' ')}
                </option>
              ))}
            </select>
          </div>
          {updates.error ? (
            <ErrorBox error={updates.error} />
          ) : !updates.data ? (
            <Loading />
          ) : (
            <UpdateTable updates={updates.data.updates} />
          )}
        </Card>
        <Card title="Spec" wide>
          <details>
            <summary>The normalized spec, every default spelled out</summary>
            <pre class="mono small">{JSON.stringify(r.spec, null, 2)}</pre>
          </details>
        </Card>
      </div>
    </div>
  );
}

function PhaseView(props: {
  phase: RolloutPhase;
  index: number;
  current: boolean;
  eta: { start_at: string | null; gate_at: string | null; finish_at: string | null } | undefined;
}) {
  const { phase: p, current } = props;
  const rate = p.success_rate;
  const below = rate !== null && p.threshold !== null && rate < p.threshold;
  return (
    <li
      class={current ? 'phase current' : 'phase'}
      aria-current={current ? 'step' : undefined}
      data-testid={`phase-${props.index}`}
    >
      <div class="phase-head">
        <strong>{p.name}</strong>
        <span class="muted">
          up to {p.percentage}% · {formatNumber(p.devices)} devices
        </span>
        {current && <Badge value="current" kind="running" />}
        {p.started_at ? (
          <span class="small muted">started {formatTime(p.started_at)}</span>
        ) : (
          <span class="small muted">not started</span>
        )}
      </div>
      <StateBar counts={p.counts} total={p.devices} label={p.name} />
      <div class="phase-gate">
        <span>
          Success rate <strong class={below ? 'bad' : ''}>{formatPercent(rate)}</strong>
          {p.threshold !== null && <> (needs {formatPercent(p.threshold, 0)})</>}
        </span>
        {rate !== null && p.threshold !== null && (
          <span
            class="meter threshold"
            role="img"
            aria-label={`success rate ${rate.toFixed(1)}% against threshold ${p.threshold}%`}
          >
            <span class={below ? 'bad' : ''} style={{ width: `${rate}%` }} />
            <i style={{ left: `${p.threshold}%` }} />
          </span>
        )}
        {p.gate ? (
          <span data-testid={`gate-${props.index}`}>
            Gate: <Badge value={p.gate.decision} kind={`gate-${p.gate.decision}`} /> {p.gate.reason}{' '}
            <span class="small muted">({formatTime(p.gate.at, true)})</span>
          </span>
        ) : (
          <span class="muted">Gate not judged yet</span>
        )}
        {props.eta && (props.eta.gate_at || props.eta.finish_at) && (
          <span class="small muted">
            {props.eta.gate_at && <>gate ≈ {formatTime(props.eta.gate_at)} </>}
            {props.eta.finish_at && <>finish ≈ {formatTime(props.eta.finish_at)}</>}
          </span>
        )}
      </div>
    </li>
  );
}
