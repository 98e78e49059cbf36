import type { Schedule } from '../schedule';
import type { JobPolicies } from './policies';

/** `missed` is an INT column. */
const COUNT_CAP = 2_000_000_000;

export interface CatchUpPlan {
  /** Occurrences to run, oldest first. */
  run: Date[];
  /** Carried on the one run of `once`: the occurrences it stands for beyond its own (today's `missed`). */
  coalesced: number;
  /** Occurrences recorded as one `missed` run (0: none to record). */
  missed: number;
}

/**
 * What a claim does with the occurrences due at `now`, starting with the
 * job's `next_run` (`first`). In normal operation only `first` is due and
 * every policy runs it. After an outage or a pause, later occurrences up to
 * `now` are due too:
 *
 * - once: one run, for `first`; the later ones are counted on it (the
 *   original cronq's rule, kept as the default);
 * - skip: none runs; all of them are recorded as one `missed` run;
 * - all: the oldest `catchUpLimit` run, oldest first; the rest are
 *   recorded as one `missed` run.
 *
 * The schedule then continues from its first occurrence after `now`.
 */
export function planCatchUp(
  schedule: Pick<Schedule, 'countBetween' | 'nextN'>,
  first: Date,
  now: Date,
  policy: Pick<JobPolicies, 'catchUp' | 'catchUpLimit'>,
): CatchUpPlan {
  const later = now.getTime() > first.getTime() ? schedule.countBetween(first, now, COUNT_CAP) : 0;
  if (later === 0 || policy.catchUp === 'once')
    return { run: [first], coalesced: later, missed: 0 };
  const total = Math.min(COUNT_CAP, later + 1);
  if (policy.catchUp === 'skip') return { run: [], coalesced: 0, missed: total };
  const take = Math.min(total, policy.catchUpLimit);
  const run = [first, ...schedule.nextN(first, take - 1)].filter(
    (d) => d.getTime() <= now.getTime(),
  );
  return { run, coalesced: 0, missed: total - run.length };
}
