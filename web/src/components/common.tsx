/** Small shared pieces: loading and error states, status badges, key/value lists. */
import type { ComponentChildren } from 'preact';

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="muted" role="status">
      {what}…
    </p>
  );
}

export function ErrorBox({ error }: { error: Error }) {
  return (
    <div class="error-box" role="alert">
      {error.message}
    </div>
  );
}

export function Badge({ value, kind = value }: { value: string; kind?: string }) {
  return <span class={`badge badge-${kind}`}>{value.replace(/_/g, ' ')}</span>;
}

export function Facts({ rows }: { rows: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="facts">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v ?? '—'}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Card(props: { title: string; children: ComponentChildren; wide?: boolean; span2?: boolean }) {
  const { title, children } = props;
  return (
    <section class={`card${props.wide ? ' wide' : ''}${props.span2 ? ' span2' : ''}`} aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}
