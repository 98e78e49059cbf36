import type { Knex } from '../core/db';

/**
 * A job's status columns follow its newest run, never the message that
 * happened to arrive last: `current_status` and `last_run_start` describe
 * the newest run that has started, `last_run_status` and `last_run_stop`
 * the newest run that has ended, "newest" by scheduled_for (the order the
 * runs were meant to happen in; unique per job). The job remembers which
 * run each pair describes (jobs.current_run_for, jobs.last_result_for) and
 * a change moves them only forward (or keeps them on the same run, which
 * may go from running to its outcome), so an old run's late result cannot
 * overwrite a newer run's status and the outcome does not depend on the
 * order in which results arrived. A run that never started (skipped,
 * missed) counts as ended, not started: last_run_status shows it, while
 * current_status and last_run_start stay on the last run that ran. A retry
 * run waiting to be published is queued, so it moves neither pair: after a
 * failed attempt both read failed until the retry starts (retries.ts, and
 * docs/results.md for how "retrying (2 of 3)" is shown). Only the runs just written are looked at:
 * the cost per batch does not grow with a job's history.
 */

const ENDED = `('succeeded', 'failed', 'timed_out', 'lost', 'missed', 'skipped', 'killed')`;
/** Never started: a skipped or missed run ends without ever running, so current_status never reads running for it. */
const NOT_STARTED = `('queued', 'skipped', 'missed')`;
const TAKE_STARTED = `(s.run_id IS NOT NULL AND (j.current_run_for IS NULL OR s.scheduled_for >= j.current_run_for))`;
const TAKE_ENDED = `(e.run_id IS NOT NULL AND (j.last_result_for IS NULL OR e.scheduled_for >= j.last_result_for))`;

/*
 * One statement for both pairs. A multi-table UPDATE promises no order for
 * its SET assignments, so none may depend on it: a pointer only ever
 * becomes max(old, candidate), and "candidate >= pointer" is true for the
 * new pointer exactly when it is true for the old one.
 */
function sql(placeholders: string): string {
  return `UPDATE jobs j
  JOIN (
    SELECT r.job_id,
           MAX(IF(r.status NOT IN ${NOT_STARTED}, r.scheduled_for, NULL)) AS started_for,
           MAX(IF(r.status IN ${ENDED}, r.scheduled_for, NULL)) AS ended_for
    FROM runs r WHERE r.run_id IN (${placeholders}) GROUP BY r.job_id
  ) c ON c.job_id = j.id
  LEFT JOIN runs s ON s.job_id = c.job_id AND s.scheduled_for = c.started_for
  LEFT JOIN runs e ON e.job_id = c.job_id AND e.scheduled_for = c.ended_for
  SET
    j.current_status = IF(${TAKE_STARTED}, s.status, j.current_status),
    j.last_run_start = IF(${TAKE_STARTED}, COALESCE(s.started_at, s.finished_at), j.last_run_start),
    j.current_run_for = IF(${TAKE_STARTED}, s.scheduled_for, j.current_run_for),
    j.last_run_status = IF(${TAKE_ENDED}, e.status, j.last_run_status),
    j.last_run_stop = IF(${TAKE_ENDED}, e.finished_at, j.last_run_stop),
    j.last_result_for = IF(${TAKE_ENDED}, e.scheduled_for, j.last_result_for)`;
}

/** Bring the status columns of these runs' jobs up to date (after the runs rows were written). */
export async function refreshJobStatus(
  trx: Knex | Knex.Transaction,
  runIds: readonly string[],
): Promise<void> {
  for (let i = 0; i < runIds.length; i += 2000) {
    const chunk = runIds.slice(i, i + 2000);
    await trx.raw(sql(chunk.map(() => '?').join(',')), chunk);
  }
}
