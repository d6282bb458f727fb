/** Serves a blob as a resumable download: Range, strong ETag (its sha256), If-Range, streamed. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlobStore } from '../artifacts/blob-store.js';
import { FleetError } from '../core/errors.js';
import { parseByteRange } from './byte-range.js';

export async function sendBlob(
  blobs: BlobStore,
  sha256: string,
  request: FastifyRequest,
  reply: FastifyReply,
  filename?: string,
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
  if (range?.kind === 'unsatisfiable') {
    return reply.status(416).header('content-range', `bytes */${info.size}`).send();
  }
  if (range?.kind === 'partial') {
    reply
      .status(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${info.size}`)
      .header('content-length', range.end - range.start + 1);
    return reply.send(await blobs.createReadStream(sha256, { start: range.start, end: range.end }));
  }
  reply.status(200).header('content-length', info.size);
  return reply.send(await blobs.createReadStream(sha256));
}
