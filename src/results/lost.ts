import type { Knex } from '../core/db';
import { refreshJobStatus } from './job-status';

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
}

/** Mark silent runs lost; returns the runs this call marked (at most `limit`). */
export async function markLostRuns(
  db: Knex,
  lostAfterMs: number,
  limit = 1000,
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
    await trx.raw(
      `SELECT id FROM jobs WHERE id IN (${jobIds.map(() => '?').join(',')}) ORDER BY id FOR UPDATE`,
      jobIds,
    );
    const runIds = candidates.map((c) => c.run_id);
    const [locked] = (await trx.raw(
      `SELECT run_id, job_id, host FROM runs WHERE run_id IN (${runIds.map(() => '?').join(',')}) AND ${STALE} ORDER BY run_id FOR UPDATE`,
      [...runIds, micros],
    )) as [LostRun[]];
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
    return locked;
  });
}
