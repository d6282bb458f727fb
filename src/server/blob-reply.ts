/**
 * Serves a blob as a resumable download: Range, strong ETag (its sha256), If-Range, streamed. With an
 * offload prefix, the bytes are left to a web server in front (nginx's X-Accel-Redirect): FleetD decides
 * who may download what, and the web server sends the file with sendfile.
 */
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlobStore } from '../artifacts/blob-store.js';
import { FleetError } from '../core/errors.js';
import type { PacingTime } from '../core/token-bucket.js';
import { errorJson } from '../protocol/common.js';
import { parseByteRange } from './byte-range.js';
import { EgressLimit, realPacingTime } from './egress-limit.js';
import { httpStatus } from './errors.js';

export interface BlobSource {
  blobs: BlobStore;
  /** e.g. `/_fleetd_blobs`: an internal nginx location aliased to `<data>/blobs`. */
  artifactOffload?: string | undefined;
  /** The fleet-wide egress cap every byte sent here passes (docs/bandwidth.md); none when unset. */
  egress?: EgressLimit | undefined;
  /** The time a download's own limit is paced by: real by default, virtual in tests. */
  pacing?: PacingTime | undefined;
}

export async function sendBlob(
  { blobs, artifactOffload, egress, pacing }: BlobSource,
  sha256: string,
  request: FastifyRequest,
  reply: FastifyReply,
  filename?: string,
  /** This download's own limit in bytes per second (docs/bandwidth.md), besides the fleet-wide cap. */
  rateLimit?: number | null,
): Promise<FastifyReply> {
  const info = await blobs.stat(sha256);
  if (!info) throw new FleetError('NOT_FOUND', `artifact ${sha256} is not in the blob store`);
  const etag = `"${sha256}"`;
  const ifRange = request.headers['if-range'];
  // A resume against a different file would corrupt it: only honour Range when If-Range (if any) matches.
  const range =
    ifRange === undefined || ifRange === etag ? parseByteRange(request.headers.range, info.size) : null;
  reply
    .header('accept-ranges', 'bytes')
    .header('etag', etag)
    .header('content-type', 'application/octet-stream');
  if (filename)
    reply.header('content-disposition', `attachment; filename="${filename.replace(/[^\w.@+-]/g, '_')}"`);
  if (artifactOffload) {
    return reply
      .header('x-accel-redirect', `${artifactOffload}/sha256/${sha256.slice(0, 2)}/${sha256}`)
      .send();
  }
  if (range?.kind === 'unsatisfiable') {
    const error = new FleetError(
      'RANGE_NOT_SATISFIABLE',
      `the range asked for starts at or beyond the end of the file (${info.size} bytes)`,
    );
    reply.removeHeader('content-disposition');
    return reply
      .status(httpStatus(error.code))
      .header('content-range', `bytes */${info.size}`)
      .type('application/json; charset=utf-8')
      .send(errorJson(error));
  }
  const partial = range?.kind === 'partial';
  const start = partial ? range.start : 0;
  const end = partial ? range.end : info.size - 1;
  if (partial) reply.status(206).header('content-range', `bytes ${start}-${end}/${info.size}`);
  reply.header('content-length', end - start + 1);
  // An empty blob (stored before empty uploads were refused) has no byte range to read: an empty body.
  if (request.method === 'HEAD' || info.size === 0) return reply.send();
  const body = await blobs.createReadStream(sha256, { start, end });
  // The bytes go straight from the file to the socket, past Fastify's reply pipeline: downloads are the
  // largest thing FleetD serves, and every layer a chunk passes through costs throughput.
  reply.hijack();
  reply.raw.writeHead(partial ? 206 : 200, reply.getHeaders() as Record<string, string | number>);
  const paced: Transform[] = [];
  if (egress) paced.push(egress.throttle());
  if (rateLimit)
    paced.push(
      new EgressLimit(rateLimit, (pacing ?? realPacingTime).now, (pacing ?? realPacingTime).wait).throttle(),
    );
  const sent = pipeline([body, ...paced, reply.raw]);
  await sent.catch(() => {
    // The device went away mid-download: it resumes with Range; nothing to answer.
  });
  return reply;
}
