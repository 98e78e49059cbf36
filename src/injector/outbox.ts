import type { Knex } from '../core/db';
import type { JobTrigger } from '../core/messages';
import { policiesOfRow } from '../core/policies/row';
import { refreshJobStatus } from '../results/job-status';
import { execute, selectRows } from './claim';
import { DEFAULT_ROUTING_KEY } from '../core/topology';
import type { PlannedRun } from './plan';

/**
 * The database side of publishing: what happens to a run row once the
 * broker has answered, the retaking of runs whose publish was never
 * confirmed (the "still due" half of "published or still due"), and the
 * first publish of retry runs once their not_before has come.
 *
 * A retry run (written by the results consumer: queued, published_at
 * NULL, not_before set) is taken by takeDueRetries once not_before <= the
 * database's now and no publish was attempted since (publish_attempt_at
 * NULL or before not_before), and only while its job is enabled and not
 * paused. That take sets publish_attempt_at, after which the run is an
 * ordinary unpublished run: the stale sweep retakes it if the publish is
 * never confirmed. Until then the stale sweep leaves it alone, so a retry
 * is never published before its time, however long ago it was queued.
 */

/** The stale sweep's guard: a retry not yet taken at or after its not_before is not stale, only waiting. */
export const NOT_A_WAITING_RETRY = '(not_before IS NULL OR publish_attempt_at >= not_before)';

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/** Record the broker's confirm. One statement per batch. */
export async function markPublished(db: Knex, runIds: readonly string[]): Promise<void> {
  if (runIds.length === 0) return;
  await execute(
    db,
    `UPDATE runs SET published_at = UTC_TIMESTAMP(3) WHERE run_id IN (${placeholders(runIds.length)}) AND published_at IS NULL`,
    runIds,
  );
}

export function unroutableReason(routingKey: string): string {
  return `no queue bound for routing key ${routingKey}`;
}

/**
 * The broker returned these runs: no queue is bound for their routing key.
 * They end as failed runs with the reason (never retried: a republish
 * would be returned again), and their jobs' status columns follow by the
 * same rule the results consumer applies (newest run by scheduled_for).
 */
export async function markUnroutable(db: Knex, runs: readonly PlannedRun[]): Promise<void> {
  if (runs.length === 0) return;
  const ids = runs.map((r) => r.runId);
  await db.transaction(async (trx) => {
    await execute(
      trx,
      `UPDATE runs SET status = 'failed', reason = CONCAT(?, COALESCE(routing_key, ?)), finished_at = UTC_TIMESTAMP(3)
        WHERE run_id IN (${placeholders(ids.length)}) AND status = 'queued'`,
      [unroutableReason(''), DEFAULT_ROUTING_KEY, ...ids],
    );
    await refreshJobStatus(trx, ids);
  });
}

interface UnpublishedRow {
  run_id: string;
  job_id: number;
  job_name: string | null;
  scheduled_for: Date;
  triggered_by: JobTrigger;
  routing_key: string | null;
  missed: number;
  attempt: number;
}

interface JobBits {
  id: number;
  name: string | null;
  command: string | null;
  timeout: number | null;
  policies: string | null;
  enabled: number;
}

export interface RetakeResult {
  runs: PlannedRun[];
  /** Runs whose job was removed before they could be published; marked failed. */
  orphaned: number;
  full: boolean;
}

/**
 * Take runs that are queued but were never confirmed published, to publish
 * them again under the same run id: either those whose last attempt is
 * older than `olderThanMs` (their injector crashed, or the broker was away),
 * or the given ones (this injector's own failed publishes, retried as soon
 * as the broker is back). SKIP LOCKED plus the `publish_attempt_at` lease
 * keep two injectors from retaking the same run at the same time.
 */
export async function retakeUnpublished(
  db: Knex,
  which: { olderThanMs: number } | { runIds: readonly string[] },
  opts: { batchSize: number; claimant: string },
): Promise<RetakeResult> {
  return db.transaction(
    async (trx) => {
      const filter =
        'runIds' in which
          ? { sql: `run_id IN (${placeholders(which.runIds.length)})`, bindings: [...which.runIds] }
          : {
              sql: `COALESCE(publish_attempt_at, queued_at) < UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND AND ${NOT_A_WAITING_RETRY}`,
              bindings: [which.olderThanMs * 1000],
            };
      if ('runIds' in which && which.runIds.length === 0)
        return { runs: [], orphaned: 0, full: false };
      const rows = await selectRows<UnpublishedRow>(
        trx,
        `SELECT ${RUN_COLUMNS} FROM runs
          WHERE published_at IS NULL AND status = 'queued' AND ${filter.sql}
          ORDER BY queued_at LIMIT ? FOR UPDATE SKIP LOCKED`,
        [...filter.bindings, opts.batchSize],
      );
      return takeRows(trx, rows, opts);
    },
    { isolationLevel: 'read committed' },
  );
}

const RUN_COLUMNS =
  'run_id, job_id, job_name, scheduled_for, triggered_by, routing_key, missed, attempt';

/**
 * Take retry runs whose not_before has come (by the database's clock) for
 * their first publish, oldest first, under the same lease as the stale
 * sweep. The candidates are found without locks (a join, so a paused or
 * disabled job's retries are passed over and wait), then locked with SKIP
 * LOCKED and checked again, so two injectors never take the same run and
 * no job row is locked (a claim of that job is never made to skip it).
 * A retry whose job was removed is taken too, and marked failed below.
 */
export async function takeDueRetries(
  db: Knex,
  opts: { batchSize: number; claimant: string },
): Promise<RetakeResult> {
  const candidates = await selectRows<{ run_id: string }>(
    db,
    `SELECT r.run_id FROM runs r LEFT JOIN jobs j ON j.id = r.job_id
      WHERE r.published_at IS NULL AND r.status = 'queued' AND r.not_before <= UTC_TIMESTAMP(3)
        AND ${RETRY_NOT_TAKEN} AND ${JOB_MAY_RUN}
      ORDER BY r.not_before LIMIT ?`,
    [opts.batchSize],
  );
  if (candidates.length === 0) return { runs: [], orphaned: 0, full: false };
  const ids = candidates.map((c) => c.run_id);
  const result = await db.transaction(
    async (trx) => {
      const rows = await selectRows<UnpublishedRow>(
        trx,
        `SELECT ${RUN_COLUMNS} FROM runs r
          WHERE run_id IN (${placeholders(ids.length)}) AND published_at IS NULL AND status = 'queued'
            AND not_before <= UTC_TIMESTAMP(3) AND ${RETRY_NOT_TAKEN}
          ORDER BY not_before FOR UPDATE SKIP LOCKED`,
        ids,
      );
      return takeRows(trx, rows, opts);
    },
    { isolationLevel: 'read committed' },
  );
  return { ...result, full: candidates.length >= opts.batchSize };
}

/** No publish was attempted since the retry came due (the results consumer may or may not set publish_attempt_at). */
export const RETRY_NOT_TAKEN =
  '(r.publish_attempt_at IS NULL OR r.publish_attempt_at < r.not_before)';
/** The retry's job is enabled and not paused, or is gone (then its run is failed, not left queued for ever). */
export const JOB_MAY_RUN = '(j.id IS NULL OR (j.enabled = 1 AND j.paused_at IS NULL))';

/** Lease the rows taken, build their messages, and fail the runs of removed jobs. */
async function takeRows(
  trx: Knex.Transaction,
  rows: UnpublishedRow[],
  opts: { batchSize: number; claimant: string },
): Promise<RetakeResult> {
  if (rows.length === 0) return { runs: [], orphaned: 0, full: false };
  const jobIds = [...new Set(rows.map((r) => r.job_id))];
  const jobs = new Map(
    (
      await selectRows<JobBits>(
        trx,
        `SELECT id, name, command, timeout, policies, enabled FROM jobs WHERE id IN (${placeholders(jobIds.length)})`,
        jobIds,
      )
    ).map((j) => [j.id, j]),
  );
  const runs: PlannedRun[] = [];
  const orphans: string[] = [];
  for (const r of rows) {
    const job = jobs.get(r.job_id);
    if (!job) {
      orphans.push(r.run_id);
      continue;
    }
    // The job's deadline as it stands now, counted from the run's own time (a retry's is its not_before).
    const deadline = policiesOfRow(job).startingDeadlineMs;
    runs.push({
      runId: r.run_id,
      jobId: r.job_id,
      jobName: r.job_name ?? job.name ?? `job-${r.job_id}`,
      command: job.command ?? '',
      routingKey: r.routing_key?.trim() || DEFAULT_ROUTING_KEY,
      timeoutSeconds: job.timeout && job.timeout > 0 ? job.timeout : null,
      scheduledFor: r.scheduled_for,
      trigger: r.triggered_by,
      missed: r.missed,
      startBy: deadline === null ? null : new Date(r.scheduled_for.getTime() + deadline),
      attempt: r.attempt,
    });
  }
  if (runs.length > 0) {
    await execute(
      trx,
      `UPDATE runs SET publish_attempt_at = UTC_TIMESTAMP(3), claimed_by = ? WHERE run_id IN (${placeholders(runs.length)})`,
      [opts.claimant, ...runs.map((r) => r.runId)],
    );
  }
  if (orphans.length > 0) {
    await execute(
      trx,
      `UPDATE runs SET status = 'failed', reason = 'the job was removed before its run could be published', finished_at = UTC_TIMESTAMP(3)
        WHERE run_id IN (${placeholders(orphans.length)})`,
      orphans,
    );
  }
  return { runs, orphaned: orphans.length, full: rows.length >= opts.batchSize };
}
