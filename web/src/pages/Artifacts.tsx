/** Releases in the artifact store: what can be rolled out. */
import { api } from '../api';
import { ErrorBox, Loading } from '../components/common';
import { UploadRelease } from '../components/UploadRelease';
import { formatBytes, formatTime } from '../format';
import { useApi } from '../hooks';
import { can } from '../session';
import type { Release } from '../types';

export function ArtifactsPage() {
  const list = useApi((signal) => api<{ artifacts: Release[] }>('/api/v1/artifacts', { signal }), []);
  return (
    <div class="page">
      <h1>Artifacts</h1>
      {can('releases.write') && <UploadRelease onUploaded={list.reload} />}
      {list.error && <ErrorBox error={list.error} />}
      {!list.data ? (
        !list.error && <Loading />
      ) : list.data.artifacts.length === 0 ? (
        <p class="muted">
          No releases yet. Upload one above, or with{' '}
          <code>fleetd artifact upload FILE --name … --version … --hardware …</code>.
        </p>
      ) : (
        <div class="table-wrap">
          <table data-testid="artifacts">
            <caption class="sr-only">Releases</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Version</th>
                <th scope="col">Type</th>
                <th scope="col">Hardware</th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">SHA-256</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data.artifacts.map((r) => (
                <tr key={r.id}>
                  <td>{r.name}</td>
                  <td class="mono">
                    {r.version}
                    {r.allow_downgrade && <span class="tag">rollback</span>}
                  </td>
                  <td>{r.type}</td>
                  <td>{r.hardware.join(', ')}</td>
                  <td class="num" title={`${r.size} bytes`}>
                    {formatBytes(r.size)}
                  </td>
                  <td class="mono small">
                    <span class="hash" title={r.sha256}>
                      {r.sha256.slice(0, 16)}…
                    </span>
                  </td>
                  <td>{formatTime(r.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
