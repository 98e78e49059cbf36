import { durationWords, type JobPolicies } from '../core/policies';
import type { DueJobRow, JobPlan, PlannedRun } from './plan';

/**
 * The last step of a job's plan: each run planned (catch-up runs oldest
 * first, then a manual one) passes two rules, in this order:
 *
 * - starting_deadline: an occurrence already later than its deadline at
 *   claim time is recorded `missed` with the reason, not published. A run
 *   that passes carries `startBy` (scheduled_for + the deadline) in its
 *   job message, so a runner that would start it later refuses it too.
 * - overlap forbid: while the job's active run (jobs.active_run_id, read
 *   under the job's row lock with its status) is queued or running, the
 *   run is recorded `skipped`, naming that run. Otherwise it is created
 *   and becomes the active run, so a claim creates at most one run for
 *   such a job and the rest of its runs are skipped behind it. An active
 *   run that is final, or no longer in `runs`, is cleared.
 * - overlap replace: the same bookkeeping, but a new run replaces the
 *   active run still going instead of being skipped: the active run is
 *   listed in `plan.replaced` (the claim kills it through the kill path,
 *   recorded `killed`, "replaced by <run id>") and the new run becomes the
 *   active one. When one claim plans several runs (catch-up), only the
 *   last is created; the earlier ones are recorded `skipped`, replaced by it.
 */
export function admitRuns(
  plan: JobPlan,
  job: Pick<DueJobRow, 'active_run_id' | 'active_status'>,
  policies: JobPolicies,
  now: Date,
): void {
  const deadline = policies.startingDeadlineMs;
  const forbid = policies.overlap === 'forbid';
  const replace = policies.overlap === 'replace';
  let active: { id: string; status: string } | null = null;
  if ((forbid || replace) && job.active_run_id) {
    const status = job.active_status ?? null;
    if (status !== null && stillGoing(status)) active = { id: job.active_run_id, status };
    else plan.update.activeRunId = null;
  }
  const admitted: PlannedRun[] = [];
  for (const run of plan.runs) {
    const lateMs = deadline === null ? 0 : now.getTime() - (run.scheduledFor.getTime() + deadline);
    if (deadline !== null && lateMs > 0) {
      plan.recorded.push({
        ...recordOf(run),
        status: 'missed',
        // It stood for itself and the occurrences counted on it.
        missed: run.missed + 1,
        reason: `not started within its starting deadline of ${durationWords(deadline)} (${durationWords(lateMs)} late when claimed)`,
      });
    } else if (replace) {
      if (deadline !== null) run.startBy = new Date(run.scheduledFor.getTime() + deadline);
      const earlier = admitted.pop();
      if (earlier) {
        plan.recorded.push({
          ...recordOf(earlier),
          status: 'skipped',
          missed: earlier.missed,
          reason: `skipped: replaced by ${run.runId} in the same claim`,
          waitedFor: run.runId,
        });
      } else if (active !== null) {
        (plan.replaced ??= []).push({
          runId: active.id,
          jobId: run.jobId,
          status: active.status,
          by: run.runId,
        });
      }
      admitted.push(run);
      active = { id: run.runId, status: 'queued' };
      plan.update.activeRunId = run.runId;
    } else if (active !== null) {
      plan.recorded.push({
        ...recordOf(run),
        status: 'skipped',
        missed: run.missed,
        reason: `skipped: run ${active.id} was still ${active.status}`,
        waitedFor: active.id,
      });
    } else {
      if (deadline !== null) run.startBy = new Date(run.scheduledFor.getTime() + deadline);
      admitted.push(run);
      if (forbid) {
        active = { id: run.runId, status: 'queued' };
        plan.update.activeRunId = run.runId;
      }
    }
  }
  plan.runs.splice(0, plan.runs.length, ...admitted);
}

/**
 * Overlap forbid is decided at the occurrence, not ahead of it. The claim
 * takes jobs up to the injector's lead before their next_run; a forbid job
 * whose active run is still going at that moment is left unclaimed (its
 * row untouched) until its occurrence has come, so a previous run that
 * ends, and whose result is stored, in the last half second is not counted
 * against it. A job with run_now set is planned as usual (waiting would
 * make the probe ask for it again at once).
 */
export function waitsForItsOccurrence(
  job: Pick<DueJobRow, 'next_run' | 'run_now' | 'active_run_id' | 'active_status'>,
  policies: Pick<JobPolicies, 'overlap'>,
  now: Date,
): boolean {
  return (
    policies.overlap === 'forbid' &&
    !job.run_now &&
    !!job.active_run_id &&
    job.active_status != null &&
    stillGoing(job.active_status) &&
    job.next_run !== null &&
    job.next_run.getTime() > now.getTime()
  );
}

/** queued (published or waiting for a retry's time) or running: every other status is final. */
export function stillGoing(status: string): boolean {
  return status === 'queued' || status === 'running';
}

function recordOf(run: PlannedRun) {
  return {
    runId: run.runId,
    jobId: run.jobId,
    jobName: run.jobName,
    routingKey: run.routingKey,
    scheduledFor: run.scheduledFor,
    trigger: run.trigger,
  };
}
