import type { Knex } from '../core/db';
import { RUN_SUMMARY_SQL, type RunBrief, type RunSummary } from './queries';

/**
 * Reads of runs across jobs: the GET /api/runs list, the failures page
 * (one line per failure chain) and the attempt of queued retries (for a
 * job's "retrying (2 of 3)").
 */

export { RUN_STATUSES } from '../core/runs';

export interface RunListQuery {
  jobIds?: number[];
  statuses?: string[];
  /** On queued_at, inclusive / exclusive. */
  since?: Date;
  until?: Date;
  page: number;
  perPage: number;
}

/**
 * GET /api/runs: newest first by queued_at (every run has one, skipped and
 * missed runs included; the (job_id, queued_at) index serves a job's list).
 */
export async function listRuns(db: Knex, q: RunListQuery): Promise<RunSummary[]> {
  const qb = db('runs').select(db.raw(RUN_SUMMARY_SQL));
  if (q.jobIds) qb.whereIn('job_id', q.jobIds);
  if (q.statuses) qb.whereIn('status', q.statuses);
  if (q.since) qb.where('queued_at', '>=', q.since);
  if (q.until) qb.where('queued_at', '<', q.until);
  return (await qb
    .orderBy([
      { column: 'queued_at', order: 'desc' },
      { column: 'run_id', order: 'desc' },
    ])
    .limit(q.perPage)
    .offset(q.page * q.perPage)) as RunSummary[];
}

/**
 * The attempt of each job's newest run when that run is a retry still
 * queued: the one case where a job reads "retrying (n of m)". One query by
 * primary key for those runs only (the lists read runs from an index that
 * does not hold `attempt`).
 */
export async function queuedRetryAttempts(
  db: Knex,
  newest: Iterable<RunBrief | undefined>,
): Promise<Map<string, number>> {
  const ids: string[] = [];
  for (const r of newest) if (r && isQueuedRetry(r)) ids.push(r.run_id);
  if (ids.length === 0) return new Map();
  const rows = (await db('runs').select('run_id', 'attempt').whereIn('run_id', ids)) as Array<{
    run_id: string;
    attempt: number;
  }>;
  return new Map(rows.map((r) => [r.run_id, r.attempt]));
}

export function isQueuedRetry(r: Pick<RunBrief, 'status' | 'triggered_by'>): boolean {
  return r.status === 'queued' && r.triggered_by === 'retry';
}
