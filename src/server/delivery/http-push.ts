/**
 * Delivery by HTTP push (docs/agentless.md): the artifact is POSTed to the device's own endpoint, its identity
 * in headers; a 2xx answer means the device installed it, anything else (or no answer in time) is a failure
 * with the status and the start of the answer as its reason.
 */
import { Readable } from 'node:stream';
import type { HttpPushDelivery } from '../../core/delivery.js';
import type { DeliveryJob, DeliveryPhase } from './delivery-job.js';

const REASON_CHARS = 200;

export async function pushOverHttp(
  target: HttpPushDelivery,
  job: DeliveryJob,
  phase: (p: DeliveryPhase) => Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const bytes = await job.open();
  let answer: Response;
  try {
    answer = await fetch(target.url, {
      method: 'POST',
      // The stream is read as it is sent: a large artifact is never held in memory.
      body: Readable.toWeb(bytes) as ReadableStream<Uint8Array>,
      duplex: 'half',
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        'content-type': 'application/octet-stream',
        'x-fleetd-size': String(job.release.size),
        'x-fleetd-update': job.update.id,
        'x-fleetd-release': job.release.name,
        'x-fleetd-version': job.release.version,
        'x-fleetd-sha256': job.release.sha256,
        'x-fleetd-action': job.action,
      },
    } as RequestInit);
  } catch (error) {
    bytes.destroy();
    throw new Error(`POST ${new URL(target.url).origin}: ${(error as Error).message}`, { cause: error });
  }
  const text = (await answer.text().catch(() => '')).slice(0, REASON_CHARS).trim();
  if (!answer.ok) throw new Error(`the device answered ${answer.status}${text ? `: ${text}` : ''}`);
  // The device's answer is the install's verdict: the worker reports the steps it stands for.
  await phase('uploaded');
  if (job.action === 'download_only') return;
  await phase('installing');
}
