import type { Knex } from '../core/db';
import type { EventRow, RunChange } from './fold';

/** A run's row as it was before this batch: what the late-result rule and the retry rule (retries.ts) read. */
export interface StoredRun {
  run_id: string;
  job_id: number;
  status: string;
  finished_at: Date | null;
  attempt: number;
  first_run_id: string | null;
  routing_key: string | null;
  job_name: string | null;
}

/** The rows of the runs these events name, locked (after the job locks, in run id order). */
export async function readStoredRuns(
  trx: Knex.Transaction,
  events: readonly EventRow[],
): Promise<Map<string, StoredRun>> {
  const ids = [...new Set(events.map((e) => e.run_id))].sort();
  const stored = new Map<string, StoredRun>();
  for (let i = 0; i < ids.length; i += 5000) {
    const chunk = ids.slice(i, i + 5000);
    const [rows] = (await trx.raw(
      `SELECT run_id, job_id, status, finished_at, attempt, first_run_id, routing_key, job_name FROM runs WHERE run_id IN (${chunk.map(() => '?').join(',')}) ORDER BY run_id FOR UPDATE`,
      chunk,
    )) as [StoredRun[]];
    for (const r of rows) stored.set(r.run_id, r);
  }
  return stored;
}

/**
 * The late-result rule for events: the events of the batch that may be
 * added, judged by each run's row as it was before this batch (read with
 * a lock by readStoredRuns, after the job locks, so no other writer
 * changes it meanwhile).
 * A run with no row, or `queued`/`running`, takes every event. A final run
 * (succeeded, failed, timed_out, missed, skipped) takes none, except a `starting` sent no
 * later than it finished (delivered late; so a run's history does not
 * depend on how its messages were split into batches). A `lost` run takes
 * only the event of the outcome that corrects it. An event naming another
 * job than the run's is never added.
 */
export function eventsToRecord(
  runs: readonly RunChange[],
  events: readonly EventRow[],
  stored: ReadonlyMap<string, StoredRun>,
): EventRow[] {
  if (events.length === 0) return [];
  const outcomeKeys = new Set(runs.map((r) => r.outcomeKey));
  return events.filter((e) => {
    const row = stored.get(e.run_id);
    if (!row) return true;
    if (Number(row.job_id) !== e.job_id) return false;
    if (row.status === 'queued' || row.status === 'running') return true;
    if (row.status === 'lost') return outcomeKeys.has(e.message_key);
    return (
      e.type === 'starting' &&
      row.finished_at !== null &&
      e.datetime.getTime() <= row.finished_at.getTime()
    );
  });
}
