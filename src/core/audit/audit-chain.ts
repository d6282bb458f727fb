/**
 * The audit log's hash chain, as pure functions: each entry's hash is the SHA-256 of the previous entry's hash
 * and the entry's canonical content, so editing, deleting or reordering any entry breaks every link after it.
 * The store appends (one writer at a time), `verifyChain` checks; both hash with `entryHash` alone.
 */
import { createHash } from 'node:crypto';

/** The hash a chain starts from when nothing was ever pruned. */
export const GENESIS_HASH = '0'.repeat(64);

/** What an entry says, before it is chained. */
export interface AuditRecord {
  at: number;
  /** Who: `api:<token name>` today; null when nobody authenticated (a failed attempt). */
  actor: string | null;
  /** The actor's role, when the server knows one. */
  role: string | null;
  /** The client's address as the server saw it. */
  source: string | null;
  /** What: `POST /api/v1/rollouts/:id/pause`, or `auth.failed`. */
  action: string;
  /** The ids the action was on (route parameters, the id of what it created). */
  target: Record<string, string>;
  /** The HTTP status the request was answered with. */
  outcome: number;
  before: unknown;
  after: unknown;
  requestId: string | null;
  /** Anything else worth keeping (a count of suppressed failures, say); never a secret. */
  data: Record<string, unknown>;
}

export interface AuditEntry extends AuditRecord {
  seq: number;
  prevHash: string;
  hash: string;
}

/** JSON with object keys sorted at every depth: the same content always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value as object)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort();
    const body = keys.map(
      (k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`,
    );
    return `{${body.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hash of entry `seq` holding `record`, chained to `prevHash`. */
export function entryHash(seq: number, record: AuditRecord, prevHash: string): string {
  const content = canonicalJson({
    seq,
    at: record.at,
    actor: record.actor,
    role: record.role,
    source: record.source,
    action: record.action,
    target: record.target,
    outcome: record.outcome,
    before: record.before ?? null,
    after: record.after ?? null,
    requestId: record.requestId,
    data: record.data,
  });
  return createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}

/** Where verification starts: the last pruned entry (seq 0 and the genesis hash when none was). */
export interface ChainAnchor {
  seq: number;
  hash: string;
}

export type ChainFault =
  | 'hash_mismatch' // the entry's content or stored hash was changed
  | 'broken_link' // its prevHash is not the hash of the entry before it
  | 'missing' // an entry before it is gone (a gap in the sequence)
  | 'head_mismatch'; // entries at the end are gone, or the recorded head was changed

export interface ChainVerdict {
  ok: boolean;
  /** Entries checked. */
  checked: number;
  /** The first entry that does not hold (its seq), and why. */
  firstBad?: { seq: number; fault: ChainFault; message: string };
}

/**
 * Checks entries in seq order against the anchor, page by page: feed every page to `check`, then `end` with
 * the head the store recorded. Stops at the first fault.
 */
export class ChainVerifier {
  private expectedSeq: number;
  private prevHash: string;
  private checked = 0;
  private fault: ChainVerdict['firstBad'];

  constructor(anchor: ChainAnchor) {
    this.expectedSeq = anchor.seq + 1;
    this.prevHash = anchor.hash;
  }

  get failed(): boolean {
    return this.fault !== undefined;
  }

  /** Checks the next entries (ascending seq); false once a fault is found. */
  check(entries: readonly AuditEntry[]): boolean {
    for (const entry of entries) {
      if (this.fault) return false;
      if (entry.seq !== this.expectedSeq) {
        this.fail(
          entry.seq,
          'missing',
          entry.seq > this.expectedSeq
            ? `entries ${this.expectedSeq}..${entry.seq - 1} are missing before entry ${entry.seq}`
            : `entry ${entry.seq} is out of order (expected ${this.expectedSeq})`,
        );
        return false;
      }
      if (entry.prevHash !== this.prevHash) {
        this.fail(entry.seq, 'broken_link', `entry ${entry.seq} does not follow the entry before it`);
        return false;
      }
      if (entryHash(entry.seq, entry, entry.prevHash) !== entry.hash) {
        this.fail(entry.seq, 'hash_mismatch', `entry ${entry.seq} was changed after it was written`);
        return false;
      }
      this.checked++;
      this.prevHash = entry.hash;
      this.expectedSeq++;
    }
    return true;
  }

  /** The verdict, given the head (last seq and hash) the store recorded at its last append. */
  end(head: ChainAnchor): ChainVerdict {
    if (!this.fault && (head.seq !== this.expectedSeq - 1 || head.hash !== this.prevHash)) {
      this.fail(
        this.expectedSeq,
        'head_mismatch',
        head.seq >= this.expectedSeq
          ? `entries ${this.expectedSeq}..${head.seq} are missing at the end of the log`
          : `the recorded head (entry ${head.seq}) does not match the last entry (${this.expectedSeq - 1})`,
      );
    }
    return this.fault
      ? { ok: false, checked: this.checked, firstBad: this.fault }
      : { ok: true, checked: this.checked };
  }

  private fail(seq: number, fault: ChainFault, message: string): void {
    this.fault = { seq, fault, message };
  }
}
