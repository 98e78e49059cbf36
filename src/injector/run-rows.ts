import type { Knex } from '../core/db';
import { execute, selectRows } from './claim';
import type { PlannedRun, RecordedRun } from './plan';

/**
 * The claim's run rows. The unique key (job_id, scheduled_for) makes an
 * occurrence exist once: if a row for it is already there (next_run was
 * set back to an occurrence that already ran), the new one is dropped and
 * that occurrence is not published or recorded again.
 */

/**
 * Rows per INSERT: catch_up all can give one job up to 1,000 runs in a
 * claim, so a batch's rows are written in statements of bounded size
 * (max_allowed_packet), not one.
 */
const ROWS_PER_STATEMENT = 1000;

async function inChunks<T>(rows: T[], write: (chunk: T[]) => Promise<T[]>): Promise<T[]> {
  if (rows.length <= ROWS_PER_STATEMENT) return write(rows);
  const out: T[] = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT)
    out.push(...(await write(rows.slice(i, i + ROWS_PER_STATEMENT))));
  return out;
}

/** Insert the runs to publish (queued, the outbox). Returns the runs actually inserted. */
export function insertRuns(
  trx: Knex.Transaction,
  runs: PlannedRun[],
  queuedAt: Map<string, Date>,
  claimant: string,
): Promise<PlannedRun[]> {
  return inChunks(runs, (chunk) =>
    insertChunk(trx, chunk, queuedAt, claimant, () => ({ status: 'queued', reason: null })),
  );
}

/**
 * Insert runs recorded final without being published (skipped, missed):
 * no host, never started, finished at the claim. Returns those inserted.
 */
export function insertRecorded(
  trx: Knex.Transaction,
  runs: RecordedRun[],
  queuedAt: Map<string, Date>,
  claimant: string,
): Promise<RecordedRun[]> {
  return inChunks(runs, (chunk) =>
    insertChunk(trx, chunk, queuedAt, claimant, (r) => ({ status: r.status, reason: r.reason })),
  );
}

/**
 * The notices of the missed runs among `recorded` (those actually
 * inserted), written in the same claim transaction: cronq-results takes
 * them and writes the runs' `missed` notifications (src/results/notify/
 * missed.ts), as it does for the results it stores. One INSERT (chunked
 * only past ROWS_PER_STATEMENT rows); nothing at all when no run was
 * missed, so a claim without one costs what it did. The values are a run
 * id, a job id and the claim's time, which any row takes, so this cannot
 * be refused and fail the claim.
 */
export async function insertMissedNotices(
  trx: Knex.Transaction,
  recorded: RecordedRun[],
  queuedAt: Map<string, Date>,
): Promise<number> {
  const missed = missedRuns(recorded);
  if (missed.length === 0) return 0;
  const written = await inChunks(missed, async (chunk) => {
    await execute(
      trx,
      `INSERT INTO run_notices (run_id, job_id, created_at) VALUES ${chunk.map(() => '(?, ?, ?)').join(', ')}`,
      chunk.flatMap((r) => [r.runId, r.jobId, queuedAt.get(r.runId)!]),
    );
    return chunk;
  });
  return written.length;
}

/**
 * Only `missed` records notify (a `skipped` run is the overlap rule doing
 * what it says), each once: a batch retried row by row after a refusal may
 * list a run twice.
 */
export function missedRuns(recorded: readonly RecordedRun[]): RecordedRun[] {
  const byId = new Map<string, RecordedRun>();
  for (const r of recorded) if (r.status === 'missed') byId.set(r.runId, r);
  return [...byId.values()];
}

type RunRowFields = Pick<
  PlannedRun,
  'runId' | 'jobId' | 'jobName' | 'scheduledFor' | 'trigger' | 'routingKey' | 'missed'
>;

/**
 * One INSERT of run rows. A queued run gets its outbox lease
 * (publish_attempt_at); a recorded one is final at once (finished_at).
 */
async function insertChunk<T extends RunRowFields>(
  trx: Knex.Transaction,
  runs: T[],
  queuedAt: Map<string, Date>,
  claimant: string,
  outcome: (r: T) => { status: string; reason: string | null },
): Promise<T[]> {
  const values: string[] = [];
  const bindings: unknown[] = [];
  for (const r of runs) {
    values.push('(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const at = queuedAt.get(r.runId)!;
    const { status, reason } = outcome(r);
    const queued = status === 'queued';
    bindings.push(
      r.runId,
      r.jobId,
      r.jobName,
      r.scheduledFor,
      r.trigger,
      status,
      r.routingKey,
      claimant,
      at,
      queued ? at : null,
      queued ? null : at,
      Math.min(r.missed, MISSED_MAX),
      reason,
    );
  }
  const inserted = await execute(
    trx,
    `INSERT IGNORE INTO runs (run_id, job_id, job_name, scheduled_for, triggered_by, status, routing_key, claimed_by, queued_at, publish_attempt_at, finished_at, missed, reason)
     VALUES ${values.join(', ')}`,
    bindings,
  );
  if (inserted === runs.length) return runs;
  return present(trx, runs);
}

/** `missed` is an INT column. */
const MISSED_MAX = 2_147_483_647;

async function present<T extends { runId: string }>(
  trx: Knex.Transaction,
  runs: T[],
): Promise<T[]> {
  const rows = await selectRows<{ run_id: string }>(
    trx,
    `SELECT run_id FROM runs WHERE run_id IN (${runs.map(() => '?').join(', ')})`,
    runs.map((r) => r.runId),
  );
  const ids = new Set(rows.map((r) => r.run_id));
  return runs.filter((r) => ids.has(r.runId));
}
