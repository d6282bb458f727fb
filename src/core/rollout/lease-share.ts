/**
 * How many rollout leases one replica holds when several drive rollouts: its fair share, ceil(open rollouts /
 * live replicas). A claim keeps its oldest leases up to the share, takes free or expired ones up to it, and
 * hands back what it holds beyond it, newest first, so a replica that just started gets work. A replica never
 * takes and hands back in one claim, and one at its share does neither: with the replicas and rollouts
 * unchanged, the leases stay where they are (no flapping).
 */

/** A lease as a claim sees it: oldest rollout first decides which ones a replica keeps. */
export interface LeaseCandidate {
  id: string;
  createdAt: number;
}

export interface LeaseShareInput {
  /** Open rollouts, held by anyone or by no one. */
  open: number;
  /** Live replicas, this one included (at least 1). */
  live: number;
  /** Open rollouts this replica holds (also when its lease ran out and no one took it over). */
  mine: readonly LeaseCandidate[];
  /** Open rollouts no live lease holds: never leased, given back, or their holder's lease ran out. */
  free: readonly LeaseCandidate[];
}

export interface LeaseShareDecision {
  share: number;
  /** Renewed. */
  keep: LeaseCandidate[];
  /** Taken over. */
  take: LeaseCandidate[];
  /** Given back for another replica to take. */
  handBack: LeaseCandidate[];
}

const oldestFirst = (a: LeaseCandidate, b: LeaseCandidate) =>
  a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function leaseShare(input: LeaseShareInput): LeaseShareDecision {
  const share = Math.ceil(input.open / Math.max(1, input.live));
  const mine = [...input.mine].sort(oldestFirst);
  const keep = mine.slice(0, share);
  const handBack = mine.slice(share);
  const take = [...input.free].sort(oldestFirst).slice(0, Math.max(0, share - keep.length));
  return { share, keep, take, handBack };
}
