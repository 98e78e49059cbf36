import { sqlTime, type Knex } from '../core/db';
import { newRunId } from '../core/runs';
import { policiesOfRow } from '../core/policies/row';
import { retryDelayMs, shouldRetry } from '../core/policies';
import type { StoredRun } from './closed-runs';
import type { RunChange } from './fold';
import { JOB_NOTIFY_COLUMNS, type JobNotifyRow } from './notify/record';

/**
 * What happens when a run becomes final, inside the transaction that made
 * it final (a result batch, store.ts, or the lost-run sweep, lost.ts), with
 * the job's row already locked: a retry run is written when the job's
 * `retries` policy says so, and `jobs.active_run_id` (overlap: forbid) is
 * moved to that retry or cleared. Only a run whose status changes in this
 * transaction comes here, so a redelivered result, a second consumer or a
 * second sweep never writes a second retry; and since the retry is in the
 * same COMMIT as the result, it exists before the result is acked.
 */

/** A run that became final in this transaction, as its row read before the change. */
export interface FinalRun {
  runId: string;
  jobId: number;
  /** Its new, final status. */
  status: string;
  attempt: number;
  firstRunId: string | null;
  routingKey: string | null;
  jobName: string | null;
}

/** The locked job row's columns the rules read (and notify/record.ts's). */
export interface JobPolicyRow extends JobNotifyRow {
  id: number;
  routing_key: string | null;
  policies: string | null;
  enabled: number | boolean;
  active_run_id: string | null;
}

/** The jobs columns to select (FOR UPDATE) for `settleFinalRuns`. */
export const JOB_POLICY_COLUMNS = `id, routing_key, policies, enabled, active_run_id, ${JOB_NOTIFY_COLUMNS}`;

export interface RetryScheduled {
  /** The run that ended. */
  runId: string;
  jobId: number;
  /** The new run: queued, published by the injector once `notBefore` has come. */
  retryRunId: string;
  /** The new run's attempt (2 = the first retry). */
  attempt: number;
  notBefore: Date;
}

/**
 * The runs of the batch whose status the upsert just made final: an
 * outcome for a row that was queued or running before (store.ts's APPLY_OUTCOME, read
 * under the row's lock, so it is this transaction's change and no one
 * else's). A redelivered result finds its run final already and is not
 * here; nor is a lost run corrected by a late result (its retry, if any,
 * was decided when it was marked lost), nor a run nobody recorded.
 */
export function becameFinal(
  runs: readonly RunChange[],
  stored: ReadonlyMap<string, StoredRun>,
): FinalRun[] {
  const finals: FinalRun[] = [];
  for (const c of runs) {
    const row = stored.get(c.runId);
    if (!c.outcome || !row || Number(row.job_id) !== c.jobId) continue;
    if (row.status !== 'queued' && row.status !== 'running') continue;
    finals.push({
      runId: c.runId,
      jobId: c.jobId,
      status: c.outcome.status,
      attempt: Number(row.attempt),
      firstRunId: row.first_run_id,
      routingKey: row.routing_key,
      jobName: row.job_name ?? c.jobName,
    });
  }
  return finals;
}

/** Statuses a retry policy's `on` can name. */
const RETRYABLE = new Set(['failed', 'timed_out', 'lost']);

/**
 * Write the retries and move or clear `active_run_id` for runs that just
 * became final. Runs of jobs not in `jobs` (the job is gone) get neither.
 */
export async function settleFinalRuns(
  trx: Knex.Transaction,
  finals: readonly FinalRun[],
  jobs: ReadonlyMap<number, JobPolicyRow>,
  random: () => number = Math.random,
): Promise<RetryScheduled[]> {
  const retries: RetryScheduled[] = [];
  const cleared: FinalRun[] = [];
  let dbNow: number | undefined;
  for (const run of finals) {
    const job = jobs.get(run.jobId);
    if (!job) continue;
    // Only jobs that declared something pay for reading their policies.
    const policy = RETRYABLE.has(run.status) && job.policies ? policiesOfRow(job).retries : null;
    if (policy && shouldRetry(policy, run.status, run.attempt)) {
      // The database's clock, as every other time of a run is.
      dbNow ??= await readDbNow(trx);
      const notBefore = new Date(dbNow + retryDelayMs(policy, run.attempt, random));
      const retry = await insertRetry(trx, run, job, notBefore);
      retries.push(retry);
      if (job.active_run_id === run.runId) {
        await trx.raw('UPDATE jobs SET active_run_id = ? WHERE id = ? AND active_run_id = ?', [
          retry.retryRunId,
          job.id,
          run.runId,
        ]);
      }
    } else if (job.active_run_id === run.runId) {
      cleared.push(run);
    }
  }
  if (cleared.length > 0) {
    // One statement for all: each job's pointer is cleared only if it still names the run that ended.
    await trx.raw(
      `UPDATE jobs SET active_run_id = NULL WHERE id IN (${cleared.map(() => '?').join(',')}) AND active_run_id IN (${cleared.map(() => '?').join(',')})`,
      [...cleared.map((r) => r.jobId), ...cleared.map((r) => r.runId)],
    );
  }
  return retries;
}

async function readDbNow(trx: Knex.Transaction): Promise<number> {
  const [rows] = (await trx.raw('SELECT UTC_TIMESTAMP(3) AS now')) as [Array<{ now: Date }>];
  return rows[0]!.now.getTime();
}

/**
 * The retry run: queued, unpublished, due at `notBefore`, which is also its
 * scheduled_for. (job_id, scheduled_for) is unique, so when another run of
 * the job holds that instant the retry moves one millisecond later.
 */
async function insertRetry(
  trx: Knex.Transaction,
  run: FinalRun,
  job: JobPolicyRow,
  notBefore: Date,
): Promise<RetryScheduled> {
  const retryRunId = newRunId();
  const attempt = run.attempt + 1;
  for (let shift = 0; shift < 1000; shift += 1) {
    const at = sqlTime(new Date(notBefore.getTime() + shift));
    const [res] = (await trx.raw(
      `INSERT IGNORE INTO runs (run_id, job_id, job_name, scheduled_for, triggered_by, status, routing_key, claimed_by, queued_at, attempt, first_run_id, not_before)
       VALUES (?, ?, ?, ?, 'retry', 'queued', ?, 'results', UTC_TIMESTAMP(3), ?, ?, ?)`,
      [
        retryRunId,
        run.jobId,
        run.jobName,
        at,
        run.routingKey ?? job.routing_key,
        attempt,
        run.firstRunId ?? run.runId,
        at,
      ],
    )) as [{ affectedRows: number }];
    if (res.affectedRows === 1)
      return {
        runId: run.runId,
        jobId: run.jobId,
        retryRunId,
        attempt,
        notBefore: new Date(notBefore.getTime() + shift),
      };
  }
  throw new Error(`no free instant for the retry of run ${run.runId} within a second`);
}
