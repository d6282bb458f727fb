/** The dry-run plan of a rollout spec: who is targeted, the phases, windows per time zone, the timeline. */
import type { ComponentChildren } from 'preact';
import { Card, Facts } from '../components/common';
import { formatNumber, formatTime } from '../format';
import type { Plan } from '../types';
import { ConflictNotice } from './Conflicts';
import { EtaBand, ReachabilityNotice } from './Reachability';

export function PlanView({ plan }: { plan: Plan }) {
  return (
    <div class="plan" data-testid="plan">
      <div class="grid">
        <Card title="Targets">
          <ConflictNotice plan={plan} />
          <Facts
            rows={[
              ['Devices targeted', <strong data-testid="plan-targets">{formatNumber(plan.targets)}</strong>],
              ['Online now', formatNumber(plan.online)],
              ['Offline', formatNumber(plan.offline)],
              ...Object.entries(plan.by_status).map(
                ([k, v]) => [`status ${k}`, formatNumber(v)] as [string, string],
              ),
              ['Skipped', formatNumber(plan.skipped.length)],
              ...(plan.spec.strategy === 'progressive' || plan.spec.abort
                ? [
                    [
                      'If it halts',
                      <span data-testid="plan-on-halt">
                        {plan.spec.rollback_on_halt
                          ? 'halt and roll back every updated device'
                          : 'halt, no rollback'}
                      </span>,
                    ] as [string, ComponentChildren],
                  ]
                : []),
            ]}
          />
          {plan.skipped.length > 0 && (
            <details>
              <summary>Skipped devices</summary>
              <ul class="small">
                {plan.skipped.slice(0, 50).map((s) => (
                  <li key={s.device_id}>
                    <span class="mono">{s.device_id}</span>: {s.reason}
                  </li>
                ))}
                {plan.skipped.length > 50 && <li>… and {formatNumber(plan.skipped.length - 50)} more</li>}
              </ul>
            </details>
          )}
        </Card>
        <Card title="Estimated timeline">
          <ReachabilityNotice reachability={plan.reachability} />
          {plan.eta?.finish_at && (
            <p>
              Finishes <EtaBand eta={plan.eta} />
              {plan.eta.unknown_devices > 0 && (
                <>
                  {' '}
                  (not counting {formatNumber(plan.eta.unknown_devices)}{' '}
                  {plan.eta.unknown_devices === 1 ? 'device' : 'devices'} not expected within four weeks)
                </>
              )}
            </p>
          )}
          {plan.timeline.length === 0 ? (
            <p class="muted">No timeline.</p>
          ) : (
            <ol class="timeline">
              {plan.timeline.map((t) => (
                <li key={`${t.at}-${t.what}`}>
                  <time dateTime={t.at}>{formatTime(t.at)}</time> {t.what}
                </li>
              ))}
            </ol>
          )}
        </Card>
        {plan.phases.length > 0 && (
          <Card title="Phases" wide>
            <div class="table-wrap">
              <table data-testid="plan-phases">
                <thead>
                  <tr>
                    <th scope="col">Phase</th>
                    <th scope="col" class="num">
                      Up to
                    </th>
                    <th scope="col" class="num">
                      Devices
                    </th>
                    <th scope="col" class="num">
                      Online
                    </th>
                    <th scope="col">Sample</th>
                  </tr>
                </thead>
                <tbody>
                  {plan.phases.map((p) => (
                    <tr key={p.name}>
                      <td>{p.name}</td>
                      <td class="num">{p.percentage}%</td>
                      <td class="num">{formatNumber(p.devices)}</td>
                      <td class="num">{formatNumber(p.online)}</td>
                      <td class="mono small">
                        {p.sample.slice(0, 5).join(', ')}
                        {p.sample.length > 5 && ' …'}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
        )}
        {plan.windows.length > 0 && (
          <Card title="Maintenance windows by time zone" wide>
            <div class="table-wrap">
              <table data-testid="plan-windows">
                <thead>
                  <tr>
                    <th scope="col">Time zone</th>
                    <th scope="col" class="num">
                      Devices
                    </th>
                    <th scope="col">Next window, device local time</th>
                    <th scope="col">Same window, your time</th>
                  </tr>
                </thead>
                <tbody>
                  {plan.windows.map((w) => (
                    <tr key={w.timezone}>
                      <td>{w.timezone}</td>
                      <td class="num">{formatNumber(w.devices)}</td>
                      <td>
                        {w.opens_local ?? '—'} – {w.closes_local ?? '—'}
                      </td>
                      <td>
                        {formatTime(w.opens_at)} – {formatTime(w.closes_at)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
        )}
      </div>
    </div>
  );
}
