import type { Knex } from '../core/db';
import { selectRows } from './claim';
import { JOB_MAY_RUN, NOT_A_WAITING_RETRY, RETRY_NOT_TAKEN } from './outbox';

/**
 * The injector's one idle query: the database's clock, the earliest
 * next_run of a job that can come due (enabled, not paused), the earliest
 * not_before of a retry run waiting for its first publish, and whether a
 * run-now flag or a stale unpublished run is waiting. Each part is one
 * index dive (idx_jobs_due, idx_runs_unpublished_due). One cheap statement per wake-up keeps
 * an idle injector at about one query per poll interval.
 */
export interface Probe {
  /** The database's now. */
  dbNow: Date;
  /** Process clock (ms) at the middle of the query's round trip, to relate dbNow to Date.now(). */
  localAt: number;
  /** Earliest next_run of a live job, or null when none is scheduled. */
  nextDue: Date | null;
  /** Earliest not_before of a retry run not yet taken (of a job that may run), or null. */
  nextRetry: Date | null;
  runNow: boolean;
  /** A queued run has waited for its confirm longer than republishAfterMs. */
  stale: boolean;
}

export async function probe(
  db: Knex,
  republishAfterMs: number,
  now: () => number = Date.now,
): Promise<Probe> {
  const before = now();
  const rows = await selectRows<{
    db_now: Date;
    next_due: Date | null;
    next_retry: Date | null;
    run_now: number;
    stale: number;
  }>(
    db,
    `SELECT UTC_TIMESTAMP(3) AS db_now,
       (SELECT next_run FROM jobs WHERE enabled = 1 AND paused_at IS NULL
         AND next_run IS NOT NULL AND ended_at IS NULL AND schedule_error IS NULL
         ORDER BY next_run LIMIT 1) AS next_due,
       (SELECT r.not_before FROM runs r LEFT JOIN jobs j ON j.id = r.job_id
         WHERE r.published_at IS NULL AND r.status = 'queued' AND r.not_before IS NOT NULL
           AND ${RETRY_NOT_TAKEN} AND ${JOB_MAY_RUN}
         ORDER BY r.not_before LIMIT 1) AS next_retry,
       EXISTS(SELECT 1 FROM jobs WHERE run_now = 1) AS run_now,
       EXISTS(SELECT 1 FROM runs WHERE published_at IS NULL AND status = 'queued'
         AND COALESCE(publish_attempt_at, queued_at) < UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND
         AND ${NOT_A_WAITING_RETRY}) AS stale`,
    [republishAfterMs * 1000],
  );
  const after = now();
  const r = rows[0]!;
  return {
    dbNow: r.db_now,
    localAt: (before + after) / 2,
    // A zero DATETIME written in SQL reads as an invalid Date and sorts first:
    // taken as due now, so the claim sets that job aside instead of every
    // job waiting behind it.
    nextDue: r.next_due !== null && Number.isNaN(r.next_due.getTime()) ? r.db_now : r.next_due,
    nextRetry:
      r.next_retry !== null && Number.isNaN(r.next_retry.getTime()) ? r.db_now : r.next_retry,
    runNow: Number(r.run_now) === 1,
    stale: Number(r.stale) === 1,
  };
}

/** Milliseconds the database's clock is ahead of this process's. */
export function clockOffsetMs(p: Probe): number {
  return p.dbNow.getTime() - p.localAt;
}
