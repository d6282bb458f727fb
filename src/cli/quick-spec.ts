/**
 * `fleetd deploy create --release R --filter F --strategy progressive --initial 5% --increment 25%
 * --interval 1h --success-rate 95`: a rollout spec from flags, for the common cases that need no spec file
 * (seed 003). The spec document it returns goes to the same parser and API as a file's; a flag that does
 * not fit the strategy is refused here, naming the flag.
 */
import { CliError } from './client.js';

export interface QuickFlags {
  name?: string;
  release?: string;
  filter?: string;
  strategy?: string;
  initial?: string;
  increment?: string;
  interval?: string;
  successRate?: string;
  maxConcurrent?: string;
  batchSize?: string;
  /** Devices without TUF adopt the root signed for migration (`fleetd keys migrate`). */
  adoptTuf?: boolean;
}

/** The flags only progressive takes. */
const PHASE_FLAGS = ['initial', 'increment', 'interval', 'successRate'] as const;
const FLAG_NAMES: Record<keyof QuickFlags, string> = {
  name: '--name',
  release: '--release',
  filter: '--filter',
  strategy: '--strategy',
  initial: '--initial',
  increment: '--increment',
  interval: '--interval',
  successRate: '--success-rate',
  maxConcurrent: '--max-concurrent',
  batchSize: '--batch-size',
  adoptTuf: '--adopt-tuf',
};
const percent = (flag: string, text: string): number => {
  const n = Number(text.trim().replace(/%$/, ''));
  if (!(n > 0 && n <= 100))
    throw new CliError(`${flag}: "${text}" must be a percentage above 0 and at most 100`);
  return n;
};
const successRate = (text: string): number => {
  const n = Number(text.trim().replace(/%$/, ''));
  if (!(n >= 0 && n <= 100))
    throw new CliError(`--success-rate: "${text}" must be a percentage from 0 to 100`);
  return n;
};
const count = (flag: string, text: string): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag}: "${text}" is not a positive integer`);
  return n;
};

/** Whether any flag of a quick rollout was given (then -f must not be). */
export function hasQuickFlags(flags: QuickFlags): boolean {
  return (Object.keys(FLAG_NAMES) as Array<keyof QuickFlags>).some((k) => flags[k] !== undefined);
}

/**
 * Phases `initial`, `initial + increment`, … up to 100% (the last capped at 100), each soaking `interval`
 * (the last needs none) and judged at `success-rate`. An increment under 5% makes more phases than a spec
 * takes (20): the spec's parser refuses it, naming `phases`.
 */
export function quickSpec(flags: QuickFlags): Record<string, unknown> {
  if (!flags.release) throw new CliError('--release: required without -f (a rollout from flags)');
  const strategy = flags.strategy ?? 'immediate';
  const spec: Record<string, unknown> = {
    name: flags.name ?? `${flags.release} ${strategy}`,
    release: flags.release,
    filter: flags.filter ?? '',
    strategy,
  };
  if (strategy !== 'progressive') {
    const given = PHASE_FLAGS.find((k) => flags[k] !== undefined);
    if (given) throw new CliError(`${FLAG_NAMES[given]}: only --strategy progressive takes it`);
  } else {
    if (flags.initial === undefined) throw new CliError('--initial: required with --strategy progressive');
    const initial = percent('--initial', flags.initial);
    const increment = flags.increment === undefined ? 100 : percent('--increment', flags.increment);
    const shares = [initial];
    while (shares.at(-1)! < 100) shares.push(Math.min(100, shares.at(-1)! + increment));
    spec.phases = shares.map((percentage, i) => ({
      percentage,
      ...(flags.interval !== undefined && i < shares.length - 1 ? { wait: flags.interval } : {}),
      ...(flags.successRate !== undefined ? { success_rate: successRate(flags.successRate) } : {}),
    }));
  }
  if (flags.maxConcurrent !== undefined) spec.max_concurrent = count('--max-concurrent', flags.maxConcurrent);
  if (flags.batchSize !== undefined) spec.batch_size = count('--batch-size', flags.batchSize);
  if (flags.adoptTuf) spec.adopt_tuf = true;
  return spec;
}
