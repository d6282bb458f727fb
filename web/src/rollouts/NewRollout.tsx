/**
 * A new rollout: every strategy and policy of the spec. "Preview" runs the server's dry run and shows the
 * plan; Create is enabled only while that plan is for exactly the spec in the form. Errors the server
 * reports name their field and are shown next to it.
 */
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { ApiError, api } from '../api';
import { Card, ErrorBox } from '../components/common';
import { FilterInput } from '../components/FilterInput';
import { operatorZone } from '../format';
import { useApi } from '../hooks';
import { href } from '../router';
import type { Plan, Release, Rollout } from '../types';
import { PlanView } from './PlanView';
import {
  errorField,
  initialForm,
  type PhaseRow,
  type SpecForm,
  STRATEGIES,
  toSpec,
  WEEKDAYS,
} from './spec-form';

const STRATEGY_HELP: Record<SpecForm['strategy'], string> = {
  progressive: 'Phases of growing share (canary first), each judged by a success-rate gate.',
  immediate: 'Every targeted device is offered the update now (online ones first).',
  scheduled: 'Devices update inside a maintenance window, in their own or a given time zone.',
  on_connect: 'Each device is offered the update the next time it connects.',
  rolling: 'A fixed batch at a time; the next batch starts as the previous one finishes.',
  blue_green: 'Every device stages the release in its inactive slot, then all switch together.',
};

type Errors = Record<string, string>;

export function NewRolloutPage() {
  const [form, setForm] = useState<SpecForm>(initialForm);
  const set = <K extends keyof SpecForm>(key: K, value: SpecForm[K]) =>
    setForm((f) => ({ ...f, [key]: value }));
  const spec = useMemo(() => toSpec(form), [form]);
  const specText = JSON.stringify(spec);
  const [plan, setPlan] = useState<{ for: string; plan: Plan }>();
  const [errors, setErrors] = useState<Errors>({});
  const [general, setGeneral] = useState<Error>();
  const [busy, setBusy] = useState<'preview' | 'create'>();
  const releases = useApi((signal) => api<{ artifacts: Release[] }>('/api/v1/artifacts', { signal }), []);
  const planIsCurrent = plan?.for === specText;

  const send = async (dryRun: boolean) => {
    setBusy(dryRun ? 'preview' : 'create');
    setErrors({});
    setGeneral(undefined);
    try {
      if (dryRun) {
        const result = await api<Plan>('/api/v1/rollouts?dry_run=true', { method: 'POST', body: spec });
        setPlan({ for: specText, plan: result });
      } else {
        const created = await api<Rollout>('/api/v1/rollouts', { method: 'POST', body: spec });
        location.hash = href('rollouts', created.id);
      }
    } catch (error) {
      const field =
        error instanceof ApiError && error.status === 400
          ? errorField(error.message, error.details)
          : undefined;
      if (field) {
        const message = error instanceof Error ? error.message.replace(/^[^:]+:\s*/, '') : String(error);
        setErrors({ [field]: message });
        document.getElementById(fieldId(field))?.focus();
      } else setGeneral(error as Error);
      if (dryRun) setPlan(undefined);
    } finally {
      setBusy(undefined);
    }
  };

  const s = form.strategy;
  const err = (key: string) => errors[key];
  return (
    <div class="page">
      <p>
        <a href={href('rollouts')}>← Rollouts</a>
      </p>
      <h1>New rollout</h1>
      {Object.keys(errors).length > 0 && (
        <div class="error-box" role="alert" data-testid="form-errors">
          {Object.entries(errors).map(([k, v]) => (
            <p key={k}>
              <button type="button" class="link" onClick={() => document.getElementById(fieldId(k))?.focus()}>
                {k}
              </button>
              {`: ${v}`}
            </p>
          ))}
        </div>
      )}
      {general && <ErrorBox error={general} />}
      <form
        class="rollout-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (planIsCurrent) void send(false);
        }}
        noValidate
      >
        <Card title="What and where" wide>
          <div class="fields">
            <Field id="name" label="Name" error={err('name')}>
              <input
                id={fieldId('name')}
                value={form.name}
                required
                onInput={(e) => set('name', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="release"
              label="Release"
              error={err('release')}
              hint="name@version of an uploaded artifact"
            >
              <select
                id={fieldId('release')}
                value={form.release}
                onChange={(e) => set('release', e.currentTarget.value)}
              >
                <option value="">Choose a release…</option>
                {releases.data?.artifacts.map((r) => (
                  <option key={r.id} value={`${r.name}@${r.version}`}>
                    {r.name}@{r.version} ({r.type}, {r.hardware.join(', ')})
                  </option>
                ))}
              </select>
            </Field>
          </div>
          <FilterInput
            id={fieldId('filter')}
            label="Target devices (filter; empty = the whole fleet)"
            value={form.filter}
            onInput={(v) => set('filter', v)}
            externalError={err('filter')}
          />
          <fieldset class="strategies">
            <legend>Strategy</legend>
            {STRATEGIES.map((st) => (
              <label key={st} class="choice">
                <input
                  type="radio"
                  name="strategy"
                  value={st}
                  checked={s === st}
                  onChange={() => set('strategy', st)}
                />
                <span>
                  <strong>{st.replace('_', ' ')}</strong>
                  <span class="small muted"> — {STRATEGY_HELP[st]}</span>
                </span>
              </label>
            ))}
            {err('strategy') && <p class="field-error">{err('strategy')}</p>}
          </fieldset>
        </Card>

        {s === 'progressive' && (
          <Card title="Phases" wide>
            <PhasesEditor phases={form.phases} onChange={(p) => set('phases', p)} errors={errors} />
          </Card>
        )}

        {s === 'rolling' && (
          <Card title="Batches" wide>
            <Field
              id="batch_size"
              label="Batch size"
              error={err('batch_size')}
              hint="Devices per batch (required)"
            >
              <input
                id={fieldId('batch_size')}
                inputMode="numeric"
                value={form.batch_size}
                onInput={(e) => set('batch_size', e.currentTarget.value)}
              />
            </Field>
          </Card>
        )}

        {s === 'blue_green' && (
          <Card title="Switch" wide>
            <Field
              id="switch_at"
              label="Switch at (% staged)"
              error={err('switch_at')}
              hint="Switch by itself once this share has staged; empty = when an operator promotes"
            >
              <input
                id={fieldId('switch_at')}
                inputMode="decimal"
                value={form.switch_at}
                onInput={(e) => set('switch_at', e.currentTarget.value)}
              />
            </Field>
          </Card>
        )}

        <Card title="When" wide>
          <div class="fields">
            <Field
              id="scheduled_at"
              label="Start no earlier than"
              error={err('scheduled_at')}
              hint={`Your time (${operatorZone}); empty = now`}
            >
              <input
                id={fieldId('scheduled_at')}
                type="datetime-local"
                value={form.scheduled_at}
                onInput={(e) => set('scheduled_at', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="end_at"
              label="Stop offering at"
              error={err('end_at')}
              hint={`Your time (${operatorZone}); empty = no end`}
            >
              <input
                id={fieldId('end_at')}
                type="datetime-local"
                value={form.end_at}
                onInput={(e) => set('end_at', e.currentTarget.value)}
              />
            </Field>
            {form.end_at && (
              <Field id="end_action" label="At the end" error={err('end_action')}>
                <select
                  id={fieldId('end_action')}
                  value={form.end_action}
                  onChange={(e) => set('end_action', e.currentTarget.value as SpecForm['end_action'])}
                >
                  <option value="">stop offering, let started updates finish (default)</option>
                  <option value="stop">stop</option>
                  <option value="cancel">cancel updates not finished</option>
                </select>
              </Field>
            )}
          </div>
          {s !== 'immediate' && (
            <WindowEditor form={form} set={set} errors={errors} required={s === 'scheduled'} />
          )}
        </Card>

        <Card title="Pace and safety" wide>
          <div class="fields">
            <Field
              id="max_concurrent"
              label="Max concurrent"
              error={err('max_concurrent')}
              hint="Updates in progress at once (default 100)"
            >
              <input
                id={fieldId('max_concurrent')}
                inputMode="numeric"
                value={form.max_concurrent}
                onInput={(e) => set('max_concurrent', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="max_concurrent_per.tag"
              label="Limit per tag: key"
              error={err('max_concurrent_per.tag') ?? err('max_concurrent_per')}
              hint="e.g. region"
            >
              <input
                id={fieldId('max_concurrent_per.tag')}
                value={form.per_tag}
                onInput={(e) => set('per_tag', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="max_concurrent_per.limit"
              label="Limit per tag value"
              error={err('max_concurrent_per.limit')}
            >
              <input
                id={fieldId('max_concurrent_per.limit')}
                inputMode="numeric"
                value={form.per_limit}
                onInput={(e) => set('per_limit', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="rate.per_minute"
              label="Rate: devices per minute"
              error={err('rate.per_minute') ?? err('rate')}
            >
              <input
                id={fieldId('rate.per_minute')}
                inputMode="numeric"
                value={form.rate_per_minute}
                onInput={(e) => set('rate_per_minute', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="rate.growth_factor"
              label="Rate growth factor"
              error={err('rate.growth_factor')}
              hint="× after each run of successes (default 1)"
            >
              <input
                id={fieldId('rate.growth_factor')}
                inputMode="decimal"
                value={form.rate_growth_factor}
                onInput={(e) => set('rate_growth_factor', e.currentTarget.value)}
              />
            </Field>
            <Field id="rate.after_successes" label="Grow after successes" error={err('rate.after_successes')}>
              <input
                id={fieldId('rate.after_successes')}
                inputMode="numeric"
                value={form.rate_after_successes}
                onInput={(e) => set('rate_after_successes', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="retry.attempts"
              label="Retry: attempts"
              error={err('retry.attempts')}
              hint="Tries in total (default 3)"
            >
              <input
                id={fieldId('retry.attempts')}
                inputMode="numeric"
                value={form.retry_attempts}
                onInput={(e) => set('retry_attempts', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="retry.backoff"
              label="Retry: first backoff"
              error={err('retry.backoff')}
              hint="e.g. 1m (default)"
            >
              <input
                id={fieldId('retry.backoff')}
                value={form.retry_backoff}
                onInput={(e) => set('retry_backoff', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="timeout"
              label="Update timeout"
              error={err('timeout')}
              hint="An update in progress this long fails (default 2h)"
            >
              <input
                id={fieldId('timeout')}
                value={form.timeout}
                onInput={(e) => set('timeout', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="abort.failure_rate"
              label="Halt at failure rate (%)"
              error={err('abort.failure_rate') ?? err('abort')}
            >
              <input
                id={fieldId('abort.failure_rate')}
                inputMode="decimal"
                value={form.abort_failure_rate}
                onInput={(e) => set('abort_failure_rate', e.currentTarget.value)}
              />
            </Field>
            <Field
              id="abort.min_finished"
              label="…once this many finished"
              error={err('abort.min_finished')}
              hint="Default 10"
            >
              <input
                id={fieldId('abort.min_finished')}
                inputMode="numeric"
                value={form.abort_min_finished}
                onInput={(e) => set('abort_min_finished', e.currentTarget.value)}
              />
            </Field>
            <Field id="offline" label="Offline devices" error={err('offline')}>
              <select
                id={fieldId('offline')}
                value={form.offline}
                onChange={(e) => set('offline', e.currentTarget.value as SpecForm['offline'])}
              >
                <option value="">queue: update when they connect (default)</option>
                <option value="queue">queue</option>
                <option value="skip">skip them</option>
              </select>
            </Field>
            <Field id="missed_window" label="Device missed its window" error={err('missed_window')}>
              <select
                id={fieldId('missed_window')}
                value={form.missed_window}
                onChange={(e) => set('missed_window', e.currentTarget.value as SpecForm['missed_window'])}
              >
                <option value="">wait for the next window (default)</option>
                <option value="next_window">next window</option>
                <option value="on_connect">update on connect</option>
              </select>
            </Field>
            <Field id="action" label="Install action" error={err('action')}>
              <select
                id={fieldId('action')}
                value={form.action}
                onChange={(e) => set('action', e.currentTarget.value as SpecForm['action'])}
              >
                <option value="">forced (default)</option>
                <option value="forced">forced</option>
                <option value="soft">soft: the device chooses when</option>
                <option value="download_only">download only (stage)</option>
              </select>
            </Field>
          </div>
          <label class="choice">
            <input
              id={fieldId('rollback_on_halt')}
              type="checkbox"
              checked={form.rollback_on_halt}
              onChange={(e) => set('rollback_on_halt', e.currentTarget.checked)}
            />
            <span>Roll back the updated devices if the rollout halts</span>
          </label>
          {err('rollback_on_halt') && <p class="field-error">{err('rollback_on_halt')}</p>}
        </Card>

        <div class="form-actions">
          <button
            type="button"
            onClick={() => send(true)}
            disabled={busy !== undefined}
            data-testid="preview"
          >
            {busy === 'preview'
              ? 'Planning…'
              : plan && !planIsCurrent
                ? 'Preview again (the form changed)'
                : 'Preview (dry run)'}
          </button>
          <button
            type="submit"
            class="primary"
            disabled={!planIsCurrent || busy !== undefined}
            aria-describedby="create-help"
          >
            {busy === 'create' ? 'Creating…' : 'Create rollout'}
          </button>
          <span id="create-help" class="small muted">
            {planIsCurrent
              ? 'The plan below is for this spec.'
              : 'Preview the plan first: Create is enabled once it is shown.'}
          </span>
        </div>
      </form>
      {plan && (
        <section aria-label="Dry-run plan" class={planIsCurrent ? '' : 'stale'}>
          <h2>Plan {planIsCurrent ? '' : '(out of date)'}</h2>
          <PlanView plan={plan.plan} />
        </section>
      )}
      <details class="spec-preview">
        <summary>Spec as JSON (the same document works as a file)</summary>
        <pre class="mono small">{JSON.stringify(spec, null, 2)}</pre>
      </details>
    </div>
  );
}

/** `phases[1].percentage` → `f-phases-1-percentage`: a valid id to focus and link to. */
export const fieldId = (field: string) => `f-${field.replace(/[[\].]+/g, '-').replace(/-$/, '')}`;

function Field(props: {
  id: string;
  label: string;
  error?: string | undefined;
  hint?: string;
  children: ComponentChildren;
}) {
  const id = fieldId(props.id);
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.children}
      {props.error ? (
        <p class="field-error" id={`${id}-error`} role="alert">
          {props.error}
        </p>
      ) : (
        props.hint && <p class="field-hint">{props.hint}</p>
      )}
    </div>
  );
}

function PhasesEditor({
  phases,
  onChange,
  errors,
}: {
  phases: PhaseRow[];
  onChange(p: PhaseRow[]): void;
  errors: Errors;
}) {
  const update = (i: number, patch: Partial<PhaseRow>) =>
    onChange(phases.map((p, j) => (i === j ? { ...p, ...patch } : p)));
  return (
    <div>
      {errors.phases && <p class="field-error">{errors.phases}</p>}
      <p class="small muted">
        Percentages are cumulative: the last phase reaches 100. A manual phase waits for an operator's
        approval before the next one.
      </p>
      <ol class="phase-rows">
        {phases.map((p, i) => {
          const k = (f: string) => `phases[${i}].${f}`;
          return (
            <li key={i} class="fields phase-row">
              <Field id={k('name')} label={`Phase ${i + 1} name`} error={errors[k('name')]}>
                <input
                  id={fieldId(k('name'))}
                  value={p.name}
                  onInput={(e) => update(i, { name: e.currentTarget.value })}
                />
              </Field>
              <Field id={k('percentage')} label="Up to %" error={errors[k('percentage')]}>
                <input
                  id={fieldId(k('percentage'))}
                  inputMode="decimal"
                  value={p.percentage}
                  onInput={(e) => update(i, { percentage: e.currentTarget.value })}
                />
              </Field>
              <Field id={k('wait')} label="Soak (wait)" error={errors[k('wait')]}>
                <input
                  id={fieldId(k('wait'))}
                  value={p.wait}
                  placeholder="0s"
                  onInput={(e) => update(i, { wait: e.currentTarget.value })}
                />
              </Field>
              <Field id={k('success_rate')} label="Success rate ≥ %" error={errors[k('success_rate')]}>
                <input
                  id={fieldId(k('success_rate'))}
                  inputMode="decimal"
                  value={p.success_rate}
                  placeholder="95"
                  onInput={(e) => update(i, { success_rate: e.currentTarget.value })}
                />
              </Field>
              <Field id={k('approval')} label="Approval" error={errors[k('approval')]}>
                <select
                  id={fieldId(k('approval'))}
                  value={p.approval}
                  onChange={(e) => update(i, { approval: e.currentTarget.value as PhaseRow['approval'] })}
                >
                  <option value="auto">auto</option>
                  <option value="manual">manual</option>
                </select>
              </Field>
              <button
                type="button"
                class="link"
                disabled={phases.length === 1}
                onClick={() => onChange(phases.filter((_, j) => j !== i))}
                aria-label={`Remove phase ${i + 1}`}
              >
                Remove
              </button>
            </li>
          );
        })}
      </ol>
      <button
        type="button"
        onClick={() =>
          onChange([...phases, { name: '', percentage: '100', wait: '', success_rate: '', approval: 'auto' }])
        }
      >
        Add phase
      </button>
    </div>
  );
}

function WindowEditor(props: {
  form: SpecForm;
  set: <K extends keyof SpecForm>(key: K, value: SpecForm[K]) => void;
  errors: Errors;
  required: boolean;
}) {
  const { form, set, errors } = props;
  const zones = useMemo(() => Intl.supportedValuesOf('timeZone'), []);
  return (
    <fieldset class="window">
      <legend>Maintenance window{props.required ? ' (required for scheduled)' : ''}</legend>
      {errors.window && <p class="field-error">{errors.window}</p>}
      <div class="choices" role="radiogroup" aria-label="Window kind">
        {(['none', 'times', 'cron'] as const).map((w) => (
          <label key={w} class="choice">
            <input type="radio" name="window" checked={form.window === w} onChange={() => set('window', w)} />
            <span>{w === 'none' ? 'Any time' : w === 'times' ? 'Daily hours' : 'Cron'}</span>
          </label>
        ))}
      </div>
      {form.window !== 'none' && (
        <div class="fields">
          {form.window === 'times' ? (
            <>
              <Field id="window.start" label="Opens (local)" error={errors['window.start']}>
                <input
                  id={fieldId('window.start')}
                  type="time"
                  value={form.window_start}
                  onInput={(e) => set('window_start', e.currentTarget.value)}
                />
              </Field>
              <Field
                id="window.end"
                label="Closes (local)"
                error={errors['window.end']}
                hint="Before the opening = the next day"
              >
                <input
                  id={fieldId('window.end')}
                  type="time"
                  value={form.window_end}
                  onInput={(e) => set('window_end', e.currentTarget.value)}
                />
              </Field>
              <fieldset class="days" id={fieldId('window.days')}>
                <legend>Days</legend>
                {WEEKDAYS.map((d) => (
                  <label key={d} class="choice">
                    <input
                      type="checkbox"
                      checked={form.window_days.includes(d)}
                      onChange={(e) =>
                        set(
                          'window_days',
                          e.currentTarget.checked
                            ? [...form.window_days, d]
                            : form.window_days.filter((x) => x !== d),
                        )
                      }
                    />
                    {d}
                  </label>
                ))}
                {errors['window.days'] && <p class="field-error">{errors['window.days']}</p>}
              </fieldset>
            </>
          ) : (
            <>
              <Field id="window.cron" label="Cron (minute hour dom month dow)" error={errors['window.cron']}>
                <input
                  id={fieldId('window.cron')}
                  class="mono"
                  value={form.window_cron}
                  onInput={(e) => set('window_cron', e.currentTarget.value)}
                />
              </Field>
              <Field
                id="window.duration"
                label="Open for"
                error={errors['window.duration']}
                hint="e.g. 2h (under 24h)"
              >
                <input
                  id={fieldId('window.duration')}
                  value={form.window_duration}
                  onInput={(e) => set('window_duration', e.currentTarget.value)}
                />
              </Field>
            </>
          )}
          <Field
            id="window.timezone"
            label="Time zone"
            error={errors['window.timezone']}
            hint={'"device": each device\'s own local time'}
          >
            <input
              id={fieldId('window.timezone')}
              list="zones"
              value={form.window_timezone}
              onInput={(e) => set('window_timezone', e.currentTarget.value)}
            />
          </Field>
          <datalist id="zones">
            <option value="device" />
            {zones.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
        </div>
      )}
    </fieldset>
  );
}
