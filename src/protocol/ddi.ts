/**
 * The hawkBit DDI messages FleetD exchanges with SWUpdate's suricatta (docs/hawkbit-ddi.md): the replies it
 * builds and the device's requests, read leniently. SWUpdate writes its feedback and configData JSON with
 * printf, unescaped (an installer log line with a quote in it is not valid JSON), and a request it cannot get a
 * 200 for is sent again forever, so a body that is not JSON is read field by field rather than refused.
 */

/** hawkBit's `HH:MM:SS` polling interval; SWUpdate takes `00:00:00` as its own default, so at least 1 s. */
export function pollingSleep(seconds: number): string {
  const s = Math.min(Math.max(1, Math.round(seconds)), 99 * 3600 + 59 * 60 + 59);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

/**
 * The base poll's sleep in seconds: the device's heartbeat interval (its connectivity class's, else the
 * server's), or less when its rollout holds it back for a known time (no free slot, outside its window).
 */
export function pollSleepSec(intervalSec: number, retryAfterSec: number | null): number {
  return retryAfterSec === null ? intervalSec : Math.min(intervalSec, Math.max(1, retryAfterSec));
}

/**
 * The numeric action id of a FleetD update: SWUpdate reads action ids as a C int, and FleetD's update ids are
 * text. A 31-bit FNV-1a hash of the id, never 0 (SWUpdate's value for an id it could not read): the same on
 * every replica without a table, and looked up among the device's own few updates, where two ids sharing a
 * hash has a chance of about n²/2³² (n updates of one device).
 */
export function actionIdOf(updateId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < updateId.length; i++) {
    hash ^= updateId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  const id = (hash >>> 0) & 0x7fffffff;
  return id === 0 ? 1 : id;
}

/** What a DDI feedback says, as far as FleetD needs it. */
export interface DdiFeedback {
  /** `closed`, `proceeding`, `canceled`, `scheduled`, `rejected`, `resumed`, `download`, `downloaded`. */
  execution: string;
  /** `success`, `failure` or `none`. */
  finished: string;
  details: string[];
}

const MAX_DETAILS = 64;
const MAX_DETAIL_LENGTH = 1_000;

/** Reads a feedback body: JSON when it is, else its fields one by one (never throws). */
export function parseFeedback(text: string): DdiFeedback {
  const json = tryJson(text);
  const status = record(record(json)?.status);
  if (status) {
    const result = record(status.result);
    const details = Array.isArray(status.details) ? status.details.filter((d) => typeof d === 'string') : [];
    return {
      execution: typeof status.execution === 'string' ? status.execution : '',
      finished: typeof result?.finished === 'string' ? result.finished : 'none',
      details: boundDetails(details),
    };
  }
  const field = (name: string) => new RegExp(`"${name}"\\s*:\\s*"([A-Za-z_]*)"`).exec(text)?.[1];
  const list = /"details"\s*:\s*\[([\s\S]*)\]/.exec(text)?.[1] ?? '';
  // Unescaped entries: split on the `","` that separates them, which an ordinary log line rarely contains.
  const details = list
    .trim()
    .replace(/^"|"$/g, '')
    .split(/"\s*,\s*"/)
    .filter((d) => d !== '');
  return {
    execution: field('execution') ?? '',
    finished: field('finished') ?? 'none',
    details: boundDetails(details),
  };
}

/** Reads configData's `data`: key → value strings (never throws; an unreadable body gives none). */
export function parseConfigData(text: string): Record<string, string> {
  const data = record(record(tryJson(text))?.data);
  const out: Record<string, string> = {};
  if (data) {
    for (const [key, value] of Object.entries(data)) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        out[key] = String(value);
      }
    }
    return out;
  }
  const body = /"data"\s*:\s*\{([\s\S]*)\}\s*\}\s*$/.exec(text)?.[1] ?? '';
  for (const match of body.matchAll(/"([^"]*)"\s*:\s*"([^"]*)"/g)) out[match[1]!] = match[2]!;
  return out;
}

function boundDetails(details: unknown[]): string[] {
  return details.slice(-MAX_DETAILS).map((d) => String(d).slice(0, MAX_DETAIL_LENGTH));
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export interface DdiLink {
  href: string;
}

/** The base poll's reply: the interval, and at most one of the links (a cancel wins, as SWUpdate reads it). */
export function basePollJson(
  sleepSec: number,
  links: { deploymentBase?: string; cancelAction?: string; configData?: string },
): { config: { polling: { sleep: string } }; _links: Record<string, DdiLink> } {
  const out: Record<string, DdiLink> = {};
  if (links.cancelAction) out.cancelAction = { href: links.cancelAction };
  else if (links.deploymentBase) out.deploymentBase = { href: links.deploymentBase };
  if (links.configData) out.configData = { href: links.configData };
  return { config: { polling: { sleep: pollingSleep(sleepSec) } }, _links: out };
}

export interface DdiArtifact {
  filename: string;
  size: number;
  sha1: string;
  md5: string;
  sha256: string;
  href: string;
}

/** `deploymentBase/{id}`: one chunk with one artifact; `attempt` for a soft rollout, else `forced` (never `skip`). */
export function deploymentJson(
  actionId: number,
  chunk: { name: string; version: string; soft: boolean },
  artifact: DdiArtifact,
) {
  const mode = chunk.soft ? 'attempt' : 'forced';
  return {
    id: String(actionId),
    deployment: {
      download: mode,
      update: mode,
      chunks: [
        {
          part: 'os',
          version: chunk.version,
          name: chunk.name,
          artifacts: [
            {
              filename: artifact.filename,
              size: artifact.size,
              hashes: { sha1: artifact.sha1, md5: artifact.md5, sha256: artifact.sha256 },
              _links: {
                download: { href: artifact.href },
                'download-http': { href: artifact.href },
              },
            },
          ],
        },
      ],
    },
  };
}

export function cancelJson(actionId: number) {
  return { id: String(actionId), cancelAction: { stopId: String(actionId) } };
}
