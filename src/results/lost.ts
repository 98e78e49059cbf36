import type { Knex } from '../core/db';
import { refreshJobStatus } from './job-status';
import {
  JOB_POLICY_COLUMNS,
  settleFinalRuns,
  type JobPolicyRow,
  type RetryScheduled,
} from './retries';
import { recordNotifications } from './notify/record';
import type { NotifyTarget } from '../core/notify/targets';

/**
 * A run is lost when its runner has gone silent: status `running` and
 * nothing heard (heartbeat or result, stamped with the database clock when
 * written) for longer than the limit. Runs still `queued` are never marked
 * lost: no runner has taken them, and the admin shows their age instead.
 *
 * Safe with several consumers: the UPDATE re-checks the condition on each
 * row, so a run is marked by whichever consumer gets there first and the
 * others change nothing. The job rows are locked first, in id order, like
 * the batch writer does, so the two never deadlock on each other.
 */

const STALE = `status = 'running' AND COALESCE(heartbeat_at, started_at, queued_at) < UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND`;

export interface LostRun {
  run_id: string;
  job_id: number;
  host: string | null;
  /** When its job's retries policy lists `lost`: the retry written with the mark. */
  retry?: RetryScheduled;
}

interface LockedRun {
  run_id: string;
  job_id: number;
  host: string | null;
  attempt: number;
  first_run_id: string | null;
  routing_key: string | null;
  job_name: string | null;
}

/**
 * Mark silent runs lost; returns the runs this call marked (at most
 * `limit`). In the same transaction, a lost run whose job's retries policy
 * lists `lost` gets its retry, and jobs.active_run_id moves to it or is
 * cleared (retries.ts); a run the UPDATE did not mark (another consumer
 * did) gets neither.
 */
export async function markLostRuns(
  db: Knex,
  lostAfterMs: number,
  limit = 1000,
  random: () => number = Math.random,
  notifyTargets: readonly NotifyTarget[] = [],
): Promise<LostRun[]> {
  const micros = Math.round(lostAfterMs * 1000);
  // A plain (non-locking) look first: in the common case nothing is stale
  // and no lock is taken at all.
  const [candidates] = (await db.raw(
    `SELECT run_id, job_id, host FROM runs WHERE ${STALE} ORDER BY run_id LIMIT ?`,
    [micros, limit],
  )) as [LostRun[]];
  if (candidates.length === 0) return [];
  return db.transaction(async (trx) => {
    const jobIds = [...new Set(candidates.map((c) => Number(c.job_id)))].sort((a, b) => a - b);
    const [jobRows] = (await trx.raw(
      `SELECT name, ${JOB_POLICY_COLUMNS} FROM jobs WHERE id IN (${jobIds.map(() => '?').join(',')}) ORDER BY id FOR UPDATE`,
      jobIds,
    )) as [JobPolicyRow[]];
    const runIds = candidates.map((c) => c.run_id);
    const [locked] = (await trx.raw(
      `SELECT run_id, job_id, host, attempt, first_run_id, routing_key, job_name FROM runs WHERE run_id IN (${runIds.map(() => '?').join(',')}) AND ${STALE} ORDER BY run_id FOR UPDATE`,
      [...runIds, micros],
    )) as [LockedRun[]];
    if (locked.length === 0) return [];
    await trx.raw(
      `UPDATE runs SET
         reason = LEFT(CONCAT('no heartbeat from ', COALESCE(host, 'an unknown host'), ' for ',
           ROUND(TIMESTAMPDIFF(MICROSECOND, COALESCE(heartbeat_at, started_at, queued_at), UTC_TIMESTAMP(3)) / 1000000), ' s'), 1024),
         finished_at = UTC_TIMESTAMP(3),
         status = 'lost'
       WHERE run_id IN (${locked.map(() => '?').join(',')}) AND ${STALE}`,
      [...locked.map((r) => r.run_id), micros],
    );
    await refreshJobStatus(
      trx,
      locked.map((r) => r.run_id),
    );
    // The rows were locked with the stale condition, so the UPDATE marked each of them.
    const finals = locked.map((r) => ({
      runId: r.run_id,
      jobId: Number(r.job_id),
      status: 'lost',
      attempt: Number(r.attempt),
      firstRunId: r.first_run_id,
      routingKey: r.routing_key,
      jobName: r.job_name,
    }));
    const jobs = new Map(jobRows.map((j) => [Number(j.id), j]));
    const retries = await settleFinalRuns(trx, finals, jobs, random);
    await recordNotifications(
      trx,
      finals,
      new Set(retries.map((r) => r.runId)),
      jobs,
      notifyTargets,
    );
    const byRun = new Map(retries.map((r) => [r.runId, r]));
    return locked.map((r) => {
      const lost: LostRun = { run_id: r.run_id, job_id: r.job_id, host: r.host };
      const retry = byRun.get(r.run_id);
      if (retry) lost.retry = retry;
      return lost;
    });
  });
}
