import type { Knex } from '../core/db';

/**
 * A job's status columns are derived from its runs, never from the message
 * that happened to arrive last: `current_status` and `last_run_start` follow
 * the newest run that has started (by scheduled_for, the order the runs were
 * meant to happen in), `last_run_status` and `last_run_stop` the newest run
 * that has ended. So an old run's late result cannot overwrite a newer
 * run's status, and the columns come out the same whatever order the
 * messages arrived in.
 */

const NEWEST_STARTED = `FROM runs r WHERE r.job_id = j.id AND r.status <> 'queued' ORDER BY r.scheduled_for DESC, r.run_id DESC LIMIT 1`;
const NEWEST_ENDED = `FROM runs r WHERE r.job_id = j.id AND r.status IN ('succeeded', 'failed', 'timed_out', 'lost') ORDER BY r.scheduled_for DESC, r.run_id DESC LIMIT 1`;

const REFRESH_SQL = (placeholders: string) => `
UPDATE jobs j SET
  j.current_status = COALESCE((SELECT r.status ${NEWEST_STARTED}), j.current_status),
  j.last_run_start = COALESCE((SELECT COALESCE(r.started_at, r.finished_at) ${NEWEST_STARTED}), j.last_run_start),
  j.last_run_status = COALESCE((SELECT r.status ${NEWEST_ENDED}), j.last_run_status),
  j.last_run_stop = COALESCE((SELECT r.finished_at ${NEWEST_ENDED}), j.last_run_stop)
WHERE j.id IN (${placeholders})`;

/** Recompute the status columns of these jobs from their runs (one statement per 1,000 jobs). */
export async function refreshJobStatus(trx: Knex | Knex.Transaction, jobIds: readonly number[]): Promise<void> {
  for (let i = 0; i < jobIds.length; i += 1000) {
    const chunk = jobIds.slice(i, i + 1000);
    await trx.raw(REFRESH_SQL(chunk.map(() => '?').join(',')), chunk);
  }
}
