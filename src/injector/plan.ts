import { scheduleTextOf, type JobRow } from '../core/jobs';
import type { JobTrigger } from '../core/messages';
import { planCatchUp } from '../core/policies';
import { policiesOfRow } from '../core/policies/row';
import { newRunId } from '../core/runs';
import { cachedSchedule, type Schedule } from '../core/schedule';
import { DEFAULT_ROUTING_KEY } from '../core/topology';
import { admitRuns } from './admit';

/**
 * What one claim does to one job, decided from the row and the database's
 * clock alone (pure, no I/O), so the rules below are testable without a
 * database:
 *
 * - a job is due when `next_run < now + lead` (and it has not ended and
 *   its schedule is readable); its run is for the occurrence `next_run`,
 *   and `next_run` moves to the first occurrence strictly after both now
 *   and that occurrence. What happens to the occurrences in between (an
 *   outage, a pause) is the job's `catch_up` (planCatchUp): `once`, the
 *   default, skips them, never runs them in a burst, and counts them in the
 *   run's `missed`; `skip` runs none and `all` runs up to catch_up_limit,
 *   each recording the rest as one `missed` run. With a lead (the
 *   injector's CRONQ_INJECTOR_LEAD_MS) a run is claimed and published
 *   slightly before its occurrence; the runner holds it until the
 *   occurrence (scheduled_for), so it starts on time instead of after the
 *   claim and the publish.
 * - a bounded schedule (`Rn/...`) with no occurrence left ends: `ended_at`
 *   is set and `next_run` cleared, so the job is never due again. So does a
 *   schedule whose next occurrence lies past 9999-12-31T23:59:59.999Z, the
 *   last time the database stores (R/<start>/P8000Y after its first run).
 * - a disabled (`enabled = 0`) or paused (`paused_at` set) job is not due;
 *   its next_run stays where it was, so on resume catch_up decides.
 * - `run_now = 1` adds a manual run for the database's now and clears the
 *   flag; it does not move `next_run` (the schedule goes on as before). It
 *   runs a paused or disabled job too: an operator asked for it.
 * - every run planned then passes the starting deadline and overlap rules
 *   (admit.ts): it is created, or recorded `missed` or `skipped`.
 * - a schedule that cannot be read, or whose arithmetic fails in any way,
 *   and a next_run that holds no valid date record `schedule_error`, which
 *   keeps the job out of the due query until the schedule is changed; its
 *   scheduled run is not created, a manual run still is.
 */

export type DueJobRow = Pick<
  JobRow,
  | 'id'
  | 'name'
  | 'command'
  | 'routing_key'
  | 'schedule'
  | 'interval'
  | 'next_run'
  | 'run_now'
  | 'timeout'
  | 'ended_at'
  | 'schedule_error'
> & {
  /** The policy columns (migration 28); absent reads as a job without policies. */
  policies?: string | null;
  enabled?: number | boolean;
  paused_at?: Date | null;
  active_run_id?: string | null;
  /** Status of active_run_id's run, read by the claim; null = no such run. */
  active_status?: string | null;
};

export interface PlannedRun {
  runId: string;
  jobId: number;
  jobName: string;
  command: string;
  routingKey: string;
  timeoutSeconds: number | null;
  scheduledFor: Date;
  trigger: JobTrigger;
  missed: number;
  /** scheduled_for + the job's starting_deadline, for the job message; null/absent = none. */
  startBy?: Date | null;
  /** 1 = the first attempt; a retry's is higher. */
  attempt?: number;
}

/** A run recorded as final without being published: it never runs. */
export interface RecordedRun {
  runId: string;
  jobId: number;
  jobName: string;
  routingKey: string;
  scheduledFor: Date;
  trigger: JobTrigger;
  status: 'skipped' | 'missed';
  reason: string;
  /** Occurrences this record stands for beyond its own (skipped), or all it stands for (missed). */
  missed: number;
  /** skipped: the run it waited for. */
  waitedFor?: string;
}

export interface JobUpdate {
  id: number;
  nextRun: Date | null;
  endedAt: Date | null;
  clearRunNow: boolean;
  scheduleError: string | null;
  /** jobs.active_run_id to write (overlap forbid); undefined = leave it as it is. */
  activeRunId?: string | null;
}

/** overlap replace: a run still going that the new run `by` replaces (killed through the kill path). */
export interface ReplacedRun {
  runId: string;
  jobId: number;
  /** Its status when the claim read it: queued (killed at once) or running (its runner kills it). */
  status: string;
  /** The run that replaces it. */
  by: string;
}

export interface JobPlan {
  runs: PlannedRun[];
  /** overlap replace: runs still going that this claim's new run replaces. */
  replaced?: ReplacedRun[];
  /** Runs recorded skipped or missed: written, never published. */
  recorded: RecordedRun[];
  update: JobUpdate;
  /** Set when this claim found the schedule unreadable (log it once). */
  newScheduleError?: string;
}

/** `missed` is an INT column. */
const MISSED_CAP = 2_000_000_000;

/** Longest reason text the `schedule_error` column takes. */
const SCHEDULE_ERROR_MAX = 500;

export function planClaim(
  job: DueJobRow,
  now: Date,
  makeRunId: () => string = newRunId,
  leadMs = 0,
): JobPlan {
  const runs: PlannedRun[] = [];
  const update: JobUpdate = {
    id: job.id,
    nextRun: job.next_run,
    endedAt: job.ended_at,
    clearRunNow: false,
    scheduleError: job.schedule_error,
  };
  const plan: JobPlan = { runs, recorded: [], update };
  const policies = policiesOfRow({ policies: job.policies ?? null, enabled: job.enabled ?? 1 });
  const base = {
    jobId: job.id,
    jobName: job.name ?? `job-${job.id}`,
    command: job.command ?? '',
    routingKey: job.routing_key?.trim() || DEFAULT_ROUTING_KEY,
    timeoutSeconds: job.timeout && job.timeout > 0 ? job.timeout : null,
  };

  const due =
    job.next_run !== null &&
    job.next_run.getTime() < now.getTime() + leadMs &&
    job.ended_at === null &&
    job.schedule_error === null &&
    policies.enabled &&
    (job.paused_at ?? null) === null;
  if (
    job.next_run !== null &&
    Number.isNaN(job.next_run.getTime()) &&
    job.schedule_error === null
  ) {
    // A zero or broken DATETIME written past the API: it sorts as due for ever, so say so once.
    setError(plan, 'next_run holds no valid date; save the job again to reschedule it');
  } else if (due) {
    const occurrence = job.next_run!;
    let problem: string | undefined;
    try {
      const text = scheduleTextOf(job);
      const schedule = text === null ? null : cachedSchedule(text);
      if (schedule === null) problem = 'the job has no schedule';
      else {
        // Claimed early, the occurrence is still ahead of now: the next one follows it.
        const next = schedule.next(occurrence.getTime() > now.getTime() ? occurrence : now);
        const catchUp = planCatchUp(schedule, occurrence, now, policies);
        for (const at of catchUp.run)
          runs.push({
            ...base,
            runId: makeRunId(),
            scheduledFor: at,
            trigger: 'schedule',
            missed: catchUp.coalesced,
          });
        if (catchUp.missed > 0) {
          const last = catchUp.run[catchUp.run.length - 1];
          // The first occurrence not run: unique for the job, as the schedule moves past it.
          const first = last === undefined ? occurrence : schedule.next(last);
          plan.recorded.push({
            ...base,
            runId: makeRunId(),
            scheduledFor: first ?? occurrence,
            trigger: 'schedule',
            status: 'missed',
            missed: catchUp.missed,
            reason: catchUpReason(catchUp.missed, policies.catchUp, policies.catchUpLimit),
          });
        }
        // null: an Rn/ schedule ran out, or its next occurrence lies past what
        // the database stores (9999-12-31): either way the schedule has ended.
        update.nextRun = next;
        if (next === null) update.endedAt = now;
      }
    } catch (err) {
      // One job's schedule must never fail the claim of the others.
      runs.length = 0;
      plan.recorded.length = 0;
      problem = (err instanceof Error && err.message) || 'the schedule cannot be read';
    }
    if (problem !== undefined) setError(plan, problem);
  }

  if (job.run_now) {
    update.clearRunNow = true;
    runs.push({ ...base, runId: makeRunId(), scheduledFor: now, trigger: 'manual', missed: 0 });
  }
  admitRuns(plan, job, policies, now);
  return plan;
}

function catchUpReason(count: number, policy: 'once' | 'skip' | 'all', limit: number): string {
  const what = count === 1 ? '1 occurrence' : `${count} occurrences`;
  const rule = policy === 'all' ? `catch_up: all, at most ${limit}` : `catch_up: ${policy}`;
  return `${what} missed while nothing could run them (${rule})`;
}

function setError(plan: JobPlan, problem: string): void {
  const text = problem.slice(0, SCHEDULE_ERROR_MAX);
  plan.update.scheduleError = text;
  plan.newScheduleError = text;
}

/**
 * Occurrences strictly after `occurrence` and not after `now`: those that
 * came due while the job waited, skipped in favour of the next one and
 * counted. The engine counts in constant time for ISO schedules, so a
 * ten-year outage of a PT1S job costs nothing.
 */
export function countMissed(
  schedule: Pick<Schedule, 'countBetween'>,
  occurrence: Date,
  now: Date,
): number {
  if (now.getTime() <= occurrence.getTime()) return 0;
  return schedule.countBetween(occurrence, now, MISSED_CAP);
}
