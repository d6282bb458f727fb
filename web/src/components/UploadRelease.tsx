/** Uploading a release from the browser: the file goes as the request body, its facts in the query. */
import { useState } from 'preact/hooks';
import { api, withQuery } from '../api';
import { ErrorBox } from './common';

const TYPES = [
  'firmware',
  'file',
  'archive',
  'script',
  'app',
  'swu',
  'rauc',
  'package',
  'container',
  'bundle',
  'mender',
];

export function UploadRelease({ onUploaded }: { onUploaded(): void }) {
  const [file, setFile] = useState<File>();
  const [name, setName] = useState('');
  const [version, setVersion] = useState('');
  const [type, setType] = useState('firmware');
  const [hardware, setHardware] = useState('');
  const [downgrade, setDowngrade] = useState(false);
  const [error, setError] = useState<Error>();
  const [result, setResult] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setError(undefined);
    setResult(undefined);
    if (!file) return setError(new Error('file: choose the artifact to upload'));
    setBusy(true);
    try {
      const path = withQuery('/api/v1/artifacts', {
        name,
        version,
        type,
        allow_downgrade: downgrade || undefined,
      });
      const params = hardware
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean)
        .map((h) => `&hardware=${encodeURIComponent(h)}`)
        .join('');
      const r = await api<{ name: string; version: string }>(`${path}${params}`, {
        method: 'POST',
        raw: file,
      });
      setResult(`Uploaded and signed ${r.name}@${r.version}.`);
      onUploaded();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <details class="upload">
      <summary>Upload a release</summary>
      <form
        class="fields"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label>
          File <input type="file" onChange={(e) => setFile(e.currentTarget.files?.[0])} />
        </label>
        <label>
          Name <input value={name} required onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Version{' '}
          <input
            value={version}
            required
            placeholder="2.4.0"
            onInput={(e) => setVersion(e.currentTarget.value)}
          />
        </label>
        <label>
          Type{' '}
          <select value={type} onChange={(e) => setType(e.currentTarget.value)}>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Hardware types{' '}
          <input
            value={hardware}
            placeholder="pos-x100, pos-x200"
            onInput={(e) => setHardware(e.currentTarget.value)}
          />
        </label>
        <label class="choice">
          <input
            type="checkbox"
            checked={downgrade}
            onChange={(e) => setDowngrade(e.currentTarget.checked)}
          />{' '}
          May install over a newer version (a rollback release)
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Uploading…' : 'Upload and sign'}
        </button>
      </form>
      {result && (
        <p role="status" data-testid="upload-result">
          {result}
        </p>
      )}
      {error && <ErrorBox error={error} />}
    </details>
  );
}
