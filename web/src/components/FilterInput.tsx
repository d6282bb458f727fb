/**
 * The filter language with live validation: as the operator types (debounced), the server counts the
 * matches, which also parses the expression; a syntax error comes back with its column, shown under the
 * text with a caret. `onValid` receives each expression the server accepted, with its count.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, isAbort, withQuery } from '../api';
import { formatNumber } from '../format';
import { useDebounced } from '../hooks';

export interface FilterInputProps {
  id: string;
  value: string;
  onInput(value: string): void;
  onValid?(filter: string, count: number): void;
  label?: string;
  /** An error from elsewhere (a form's submit) shown in place of the live one. */
  externalError?: string | undefined;
}

type Check = { state: 'checking' } | { state: 'ok'; count: number } | { state: 'error'; message: string };

export function FilterInput({
  id,
  value,
  onInput,
  onValid,
  label = 'Filter',
  externalError,
}: FilterInputProps) {
  const debounced = useDebounced(value, 300);
  const [check, setCheck] = useState<Check>({ state: 'checking' });
  useEffect(() => {
    const controller = new AbortController();
    setCheck({ state: 'checking' });
    api<{ count: number }>(withQuery('/api/v1/devices/count', { filter: debounced }), {
      signal: controller.signal,
    }).then(
      ({ count }) => {
        setCheck({ state: 'ok', count });
        onValid?.(debounced.trim(), count);
      },
      (error: unknown) => {
        if (isAbort(error)) return;
        setCheck({ state: 'error', message: error instanceof ApiError ? error.message : String(error) });
      },
    );
    return () => controller.abort();
  }, [debounced]);

  const error = externalError ?? (check.state === 'error' ? check.message : undefined);
  const column = error ? /^column (\d+)/.exec(error)?.[1] : undefined;
  const stale = debounced !== value;
  return (
    <div class="field filter-field">
      <label for={id}>{label}</label>
      <input
        id={id}
        type="text"
        class="mono"
        value={value}
        spellcheck={false}
        autocomplete="off"
        placeholder="status=online and tag.region in (northeast, west) and firmware < 2.2.0"
        aria-invalid={error ? 'true' : 'false'}
        aria-describedby={`${id}-status`}
        onInput={(e) => onInput(e.currentTarget.value)}
      />
      {column && !stale && (
        <pre class="caret mono" aria-hidden="true">
          {`${' '.repeat(Math.max(0, Number(column) - 1))}^`}
        </pre>
      )}
      <p id={`${id}-status`} class={error ? 'field-error' : 'field-hint'} aria-live="polite">
        {error ??
          (stale || check.state !== 'ok'
            ? 'Checking…'
            : `${formatNumber(check.count)} device${check.count === 1 ? '' : 's'} match`)}
      </p>
    </div>
  );
}
