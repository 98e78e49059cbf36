import type { Knex } from '../core/db';
import { RUN_STATUSES } from '../core/runs';

/**
 * What the web's /metrics reads from the database: the one place its
 * queries live (extend it here). Two statements, each an aggregate over an
 * index or over `jobs` alone, so a scrape costs a few milliseconds at
 * 10,000 jobs; metrics.ts caches the answer for a few seconds.
 */

/** A job whose next_run is this far in the past is late: no injector has claimed it. */
export const LATE_AFTER_SECONDS = 60;

export interface JobsSnapshot {
  /** Jobs by current_status (its last started run's status; `none` before the first). */
  byStatus: Map<string, number>;
  /** Seconds the oldest queued run that may start has waited; 0 when none waits. */
  oldestQueuedSeconds: number;
  /** Runs a runner has started and not finished. */
  running: number;
  /** Enabled, unpaused jobs whose next_run is more than LATE_AFTER_SECONDS in the past. */
  late: number;
  /** Jobs overdue by their alert_after: no success for that long (docs/notifications.md). */
  overdue: number;
}

const KNOWN = new Set<string>(RUN_STATUSES);

/** A status label from a column an older cronq may have written anything into: a bounded set. */
function statusLabel(s: string | null): string {
  if (s === null || s.trim() === '') return 'none';
  const v = s.trim();
  return KNOWN.has(v) ? v : 'other';
}

export async function readJobsSnapshot(db: Knex): Promise<JobsSnapshot> {
  // Full read of jobs' (current_status) only: 10,000 short rows.
  const [statusRows] = (await db.raw(
    'SELECT current_status AS status, COUNT(*) AS n FROM jobs GROUP BY current_status',
  )) as unknown as [Array<{ status: string | null; n: number | string }>];
  // Each subquery is a range read of one index: idx_runs_status_heartbeat
  // (status = 'queued' / 'running'), idx_jobs_due (enabled, paused_at, next_run)
  // and idx_jobs_overdue (overdue_since, alert_after_ms).
  const [[row]] = (await db.raw(
    `SELECT
       (SELECT TIMESTAMPDIFF(MICROSECOND,
            MIN(GREATEST(r.queued_at, COALESCE(r.not_before, r.queued_at))), UTC_TIMESTAMP(3))
          FROM runs r LEFT JOIN jobs j ON j.id = r.job_id
         WHERE r.status = 'queued'
           AND (r.not_before IS NULL OR r.not_before <= UTC_TIMESTAMP(3))
           AND (r.published_at IS NOT NULL OR j.id IS NULL OR (j.enabled = 1 AND j.paused_at IS NULL))
       ) AS oldest_us,
       (SELECT COUNT(*) FROM runs WHERE status = 'running') AS running,
       (SELECT COUNT(*) FROM jobs
         WHERE enabled = 1 AND paused_at IS NULL AND ended_at IS NULL AND schedule_error IS NULL
           AND next_run < UTC_TIMESTAMP(3) - INTERVAL ? SECOND) AS late,
       (SELECT COUNT(*) FROM jobs WHERE overdue_since IS NOT NULL) AS overdue`,
    [LATE_AFTER_SECONDS],
  )) as unknown as [
    Array<{
      oldest_us: number | string | null;
      running: number | string;
      late: number | string;
      overdue: number | string;
    }>,
  ];
  const byStatus = new Map<string, number>();
  for (const s of ['none', ...RUN_STATUSES]) byStatus.set(s, 0);
  for (const r of statusRows) {
    const label = statusLabel(r.status);
    byStatus.set(label, (byStatus.get(label) ?? 0) + Number(r.n));
  }
  return {
    byStatus,
    oldestQueuedSeconds: row?.oldest_us == null ? 0 : Math.max(0, Number(row.oldest_us) / 1e6),
    running: Number(row?.running ?? 0),
    late: Number(row?.late ?? 0),
    overdue: Number(row?.overdue ?? 0),
  };
}
