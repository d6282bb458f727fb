/** Loading a fleet from the browser: a fleet file (the format of examples/pos-fleet.json) sent to the import API. */
import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorBox } from './common';

export function ImportDevices({ onImported }: { onImported(): void }) {
  const [result, setResult] = useState<string>();
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const load = async (file: File) => {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      let doc: unknown;
      try {
        doc = JSON.parse(await file.text());
      } catch (e) {
        throw new Error(`${file.name} is not JSON: ${(e as Error).message}`);
      }
      const r = await api<{ created: number; updated: number }>('/api/v1/devices/import', {
        method: 'POST',
        body: doc,
      });
      setResult(
        `Imported ${r.created + r.updated} devices from ${file.name}: ${r.created} new, ${r.updated} updated.`,
      );
      onImported();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <details class="import">
      <summary>Import devices</summary>
      <p class="muted small">
        A JSON file{' '}
        <code>
          {
            '{"now"?: instant, "devices": [{ "id", "name", "firmware_version", "hardware_type", "timezone", "tags", … }]}'
          }
        </code>
        . Importing again updates devices; nothing is imported if any entry is wrong.
      </p>
      <label>
        Fleet file{' '}
        <input
          type="file"
          accept="application/json,.json"
          disabled={busy}
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            if (file) void load(file);
          }}
        />
      </label>
      {result && (
        <p role="status" data-testid="import-result">
          {result}
        </p>
      )}
      {error && <ErrorBox error={error} />}
    </details>
  );
}
