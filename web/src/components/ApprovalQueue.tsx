/**
 * "Waiting for approval": devices that asked to join without a token (`fleetd server --enrollment approve`),
 * each with the fingerprint of its key to compare with the device, and Accept / Reject. Shown only when the
 * queue holds something.
 */
import { useState } from 'preact/hooks';
import { api } from '../api';
import { formatAgo } from '../format';
import { useApi } from '../hooks';
import type { AdmissionReply, WaitingDevices } from '../types';
import { ErrorBox } from './common';

export function ApprovalQueue({ onDecided }: { onDecided(): void }) {
  const queue = useApi((signal) => api<WaitingDevices>('/api/v1/devices/pending', { signal }), []);
  const [failure, setFailure] = useState<Error>();
  const decide = async (decision: 'accept' | 'reject', id: string) => {
    setFailure(undefined);
    try {
      const reply = await api<AdmissionReply>(`/api/v1/devices/${decision}`, {
        method: 'POST',
        body: { ids: [id] },
      });
      const refused = reply.results.find((r) => !r.ok);
      if (refused) setFailure(new Error(refused.error?.message ?? `${id} could not be ${decision}ed`));
    } catch (error) {
      setFailure(error as Error);
    }
    queue.reload();
    onDecided();
  };
  const waiting = queue.data?.devices ?? [];
  if (waiting.length === 0 && !queue.error) return null;
  return (
    <section class="card wide" aria-label="Waiting for approval">
      <h2>Waiting for approval</h2>
      {queue.error && <ErrorBox error={queue.error} />}
      {failure && <ErrorBox error={failure} />}
      <table class="approval">
        <thead>
          <tr>
            <th scope="col">ID</th>
            <th scope="col">Hardware</th>
            <th scope="col">Asked</th>
            <th scope="col">Key fingerprint</th>
            <th scope="col">Decision</th>
          </tr>
        </thead>
        <tbody>
          {waiting.map((w) => (
            <tr key={w.device.id}>
              <td>{w.device.id}</td>
              <td>{w.device.hardware_type ?? '—'}</td>
              <td>{formatAgo(w.requested_at)}</td>
              <td>
                <code title={w.key_fingerprint ?? undefined}>{w.key_fingerprint?.slice(0, 16) ?? '—'}…</code>
              </td>
              <td>
                <button
                  type="button"
                  aria-label={`Accept ${w.device.id}`}
                  onClick={() => decide('accept', w.device.id)}
                >
                  Accept
                </button>{' '}
                <button
                  type="button"
                  class="danger"
                  aria-label={`Reject ${w.device.id}`}
                  onClick={() => decide('reject', w.device.id)}
                >
                  Reject
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
