import { claimDueJobs } from './claim';
import type { CycleContext } from './cycle-context';
import { sendReplaceKills } from './replace';

/** Batches claimed back to back before the loop probes (and sweeps) again. */
const MAX_BATCHES_PER_CYCLE = 50;
/** Claim transactions side by side while a backlog lasts. */
const CLAIM_CONCURRENCY = 2;

/**
 * Claim batch after batch while they come back full. Each batch is
 * published while the next one is claimed (and while the next cycle
 * runs), so the database and the broker work at the same time; after a
 * full first batch, CLAIM_CONCURRENCY transactions claim side by side
 * (SKIP LOCKED gives them disjoint rows), so a backlog uses more than one
 * database thread. Once a publish has failed no more batches are claimed,
 * so a broker that went away does not turn more due jobs into unpublished
 * runs: they stay due and coalesce into one run each when it is back.
 */
export async function claimAndPublish(
  ctx: CycleContext,
  includeRunNow: boolean,
): Promise<{ jobs: number; full: boolean; waitingUntil: Date | null }> {
  let jobs = 0;
  let waitingUntil: Date | null = null;
  let batches = 0;
  let full = false;
  const claimOne = async (withRunNow: boolean): Promise<boolean> => {
    batches += 1;
    const claim = await claimDueJobs(ctx.db, {
      batchSize: ctx.settings.batchSize,
      includeRunNow: withRunNow,
      claimant: ctx.claimant,
      leadMs: ctx.settings.leadMs,
    });
    jobs += claim.jobs;
    if (claim.waitingUntil !== null && (waitingUntil === null || claim.waitingUntil < waitingUntil))
      waitingUntil = claim.waitingUntil;
    ctx.counters.claimedJobs += claim.jobs;
    for (const e of claim.scheduleErrors) {
      // Logged once: schedule_error keeps the job out of later claims until its schedule changes.
      ctx.counters.scheduleErrors += 1;
      ctx.logger.error(
        { job_id: e.jobId, job: e.jobName, err: e.error },
        'job skipped: its schedule cannot be read (fix the schedule to resume it)',
      );
      ctx.events.emit('schedule:error', { jobId: e.jobId, jobName: e.jobName, error: e.error });
    }
    for (const r of claim.recorded) {
      // Logged at info: these are the job's policies doing what they say, not faults.
      ctx.logger.info(
        { job_id: r.jobId, job: r.jobName, run_id: r.runId, reason: r.reason },
        r.status === 'skipped' ? 'run skipped' : 'run missed',
      );
      if (r.status === 'skipped')
        ctx.events.emit('run:skipped', {
          jobId: r.jobId,
          jobName: r.jobName,
          runId: r.runId,
          scheduledFor: r.scheduledFor,
          waitedFor: r.waitedFor ?? '',
          reason: r.reason,
        });
      else
        ctx.events.emit('run:missed', {
          jobId: r.jobId,
          jobName: r.jobName,
          runId: r.runId,
          scheduledFor: r.scheduledFor,
          count: r.missed,
          reason: r.reason,
        });
    }
    // overlap replace: the old runs' kill orders go out before the new runs' job messages.
    if (claim.replaced.length > 0) {
      await sendReplaceKills(ctx.control, claim.replaced, ctx.logger);
      for (const r of claim.replaced)
        ctx.events.emit('run:replaced', { jobId: r.jobId, runId: r.runId, by: r.by });
    }
    // Published while the next batch is claimed; waits only when too many batches are unconfirmed.
    await ctx.dispatcher.submit(claim.runs);
    return claim.full;
  };
  const more = () => !ctx.dispatcher.failing && !ctx.stopping() && batches < MAX_BATCHES_PER_CYCLE;
  full = await claimOne(includeRunNow);
  if (full && more()) {
    const lane = async () => {
      while (more()) {
        if (!(await claimOne(false))) return false;
      }
      return true;
    };
    const lanes = await Promise.all(Array.from({ length: CLAIM_CONCURRENCY }, lane));
    // Full only if every lane stopped at the cap with rows still coming.
    full = lanes.every(Boolean);
  }
  return { jobs, full, waitingUntil };
}
