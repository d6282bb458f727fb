/**
 * The device's consent before it installs a soft update (docs/agent.md, "Consent"): install now, defer through
 * the server within the rollout's budget, or ask again later. `--consent-hook CMD` runs a shell command with
 * the release in its environment and reads its exit code; the older `--consent-cmd` only says yes or not yet.
 */
import { runShell } from './run-command.js';

/** What is asked: the update and its release. */
export interface ConsentQuestion {
  updateId: string;
  rolloutId: string | null;
  releaseName: string;
  releaseVersion: string;
}

/** install: go ahead; defer: ask the server to put it off (`for` a duration such as 4h; its default 1h); later: ask again in a while. */
export type ConsentAnswer = { kind: 'install' } | { kind: 'defer'; for?: string } | { kind: 'later' };

/** A consent function: a boolean is the older yes / not yet. */
export type Consent = (q: ConsentQuestion) => Promise<boolean | ConsentAnswer>;

/** The hook's exit code that defers the update (EX_TEMPFAIL of sysexits.h: "try again later"). */
export const DEFER_EXIT_CODE = 75;
/** How long the hook may take before it counts as "not yet". */
const HOOK_TIMEOUT_MS = 60_000;
const DURATION = /^\d{1,6}(ms|s|m|h|d)$/;

export const consentAnswer = (raw: boolean | ConsentAnswer): ConsentAnswer =>
  typeof raw === 'boolean' ? { kind: raw ? 'install' : 'later' } : raw;

/**
 * `--consent-hook CMD`: exit 0 installs; exit 75 defers (the last line it prints, when a duration such as 4h, is
 * how long); any other exit, a signal or 60 s without an answer asks again in a while without spending the
 * budget.
 */
export function consentHook(command: string): Consent {
  return async (q) => {
    const result = await runShell(['-c', command], {
      timeoutMs: HOOK_TIMEOUT_MS,
      env: {
        FLEETD_UPDATE_ID: q.updateId,
        FLEETD_ROLLOUT_ID: q.rolloutId ?? '',
        FLEETD_RELEASE_NAME: q.releaseName,
        FLEETD_RELEASE_VERSION: q.releaseVersion,
      },
    });
    if (result.kind !== 'exit') return { kind: 'later' };
    if (result.code === 0) return { kind: 'install' };
    if (result.code !== DEFER_EXIT_CODE) return { kind: 'later' };
    const last = result.output.trim().split('\n').pop()?.trim() ?? '';
    return DURATION.test(last) ? { kind: 'defer', for: last } : { kind: 'defer' };
  };
}
