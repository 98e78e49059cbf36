import type { Knex } from '../core/db';
import { isTransientDbError } from '../core/errors';
import { errorText } from '../core/error-text';
import { policiesOfRow } from '../core/policies/row';
import { waitsForItsOccurrence } from './admit';
import {
  planClaim,
  type DueJobRow,
  type PlannedRun,
  type RecordedRun,
  type ReplacedRun,
} from './plan';
import { markReplaced } from './replace';
import { insertMissedNotices, insertRecorded, insertRuns } from './run-rows';

/**
 * The claim: one READ COMMITTED transaction per batch that locks due jobs
 * with FOR UPDATE SKIP LOCKED (so injectors on other hosts take other rows
 * instead of waiting), moves each job on, and writes its run rows. The run
 * rows are the outbox: they are committed before anything is published, so
 * a crash or a broker outage after the commit leaves a `queued` run with no
 * `published_at`, which the sweep publishes again under the same run id.
 * READ COMMITTED because REPEATABLE READ would take gap locks on the
 * next_run range and block the web's inserts and updates of other jobs.
 */

export interface ClaimOptions {
  batchSize: number;
  /** Also claim jobs with run_now = 1 (the probe saw one). */
  includeRunNow: boolean;
  /** `host.pid`, written to jobs.locked_by and runs.claimed_by. */
  claimant: string;
  /** Also claim jobs whose next_run is at most this far ahead (see planClaim). Default 0. */
  leadMs?: number;
}

export interface ClaimResult {
  /** Runs created by this claim, to publish. */
  runs: PlannedRun[];
  /** Runs this claim recorded skipped (overlap) or missed (catch_up, starting deadline). */
  recorded: RecordedRun[];
  /** overlap replace: runs still going that this claim's runs replace (marked; their kill orders are the caller's). */
  replaced: ReplacedRun[];
  /** Jobs whose schedule this claim found unreadable. */
  scheduleErrors: Array<{ jobId: number; jobName: string; error: string }>;
  /** True when a query returned a full batch, so more may be due right now. */
  full: boolean;
  /** Jobs locked and moved on by this claim. */
  jobs: number;
  /**
   * The earliest occurrence of an overlap-forbid job left unclaimed because
   * its previous run was still going ahead of it (waitsForItsOccurrence):
   * the injector wakes then instead of at next_run less the lead. Null if none.
   */
  waitingUntil: Date | null;
}

type ClaimRow = DueJobRow & { db_now: Date };

const JOB_COLUMNS =
  'id, name, command, routing_key, schedule, `interval`, next_run, run_now, timeout, ended_at, schedule_error, policies, enabled, paused_at, active_run_id, UTC_TIMESTAMP(3) AS db_now';

/** Rows of a raw SELECT through knex's mysql2 client. */
export async function selectRows<T>(
  db: Knex | Knex.Transaction,
  sql: string,
  bindings: readonly unknown[] = [],
): Promise<T[]> {
  const [rows] = (await db.raw(sql, bindings as Knex.RawBinding[])) as unknown as [T[]];
  return rows;
}

export async function execute(
  db: Knex | Knex.Transaction,
  sql: string,
  bindings: readonly unknown[] = [],
): Promise<number> {
  const [res] = (await db.raw(sql, bindings as Knex.RawBinding[])) as unknown as [
    { affectedRows: number },
  ];
  return res.affectedRows;
}

export async function claimDueJobs(db: Knex, opts: ClaimOptions): Promise<ClaimResult> {
  const lead = opts.leadMs ?? 0;
  return db.transaction(
    async (trx) => {
      // Index range scan on idx_jobs_due (enabled, paused_at, next_run), so
      // disabled and paused jobs, whose next_run stays in the past, are never
      // read; ended jobs have next_run NULL and fall out of it.
      const due = await selectRows<ClaimRow>(
        trx,
        `SELECT ${JOB_COLUMNS} FROM jobs
          WHERE enabled = 1 AND paused_at IS NULL
            AND next_run < UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND AND ended_at IS NULL AND schedule_error IS NULL
          ORDER BY next_run LIMIT ? FOR UPDATE SKIP LOCKED`,
        [Math.round(lead * 1000), opts.batchSize],
      );
      // A separate query instead of OR, so each side uses its own index. A
      // manual run is allowed for an ended job or one with a broken schedule,
      // and for a paused or disabled one (an operator asked for it).
      const manual = opts.includeRunNow
        ? await selectRows<ClaimRow>(
            trx,
            `SELECT ${JOB_COLUMNS} FROM jobs WHERE run_now = 1 ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`,
            [opts.batchSize],
          )
        : [];
      const rows = new Map<number, ClaimRow>();
      for (const r of due) rows.set(r.id, r);
      for (const r of manual) rows.set(r.id, r); // the later now; still after next_run
      const result: ClaimResult = {
        runs: [],
        recorded: [],
        replaced: [],
        scheduleErrors: [],
        full: due.length >= opts.batchSize || manual.length >= opts.batchSize,
        jobs: 0,
        waitingUntil: null,
      };
      if (rows.size === 0) return result;
      await readActiveRuns(trx, rows.values());
      for (const row of [...rows.values()]) {
        if (!row.active_run_id) continue; // only forbid and replace jobs have one; spare the JSON parse
        const policies = policiesOfRow({
          policies: row.policies ?? null,
          enabled: row.enabled ?? 1,
        });
        if (!waitsForItsOccurrence(row, policies, row.db_now)) continue;
        rows.delete(row.id);
        const at = row.next_run!;
        if (result.waitingUntil === null || at < result.waitingUntil) result.waitingUntil = at;
      }
      result.jobs = rows.size;
      if (rows.size === 0) return result;

      const updates: ReturnType<typeof planClaim>['update'][] = [];
      const queuedAt = new Map<string, Date>();
      for (const row of rows.values()) {
        const plan = planClaim(row, row.db_now, undefined, lead);
        updates.push(plan.update);
        for (const run of [...plan.runs, ...plan.recorded]) queuedAt.set(run.runId, row.db_now);
        result.runs.push(...plan.runs);
        result.recorded.push(...plan.recorded);
        if (plan.replaced) result.replaced.push(...plan.replaced);
        if (plan.newScheduleError !== undefined)
          result.scheduleErrors.push({
            jobId: row.id,
            jobName: row.name,
            error: plan.newScheduleError,
          });
      }

      // A row the database refuses (a value it cannot store) must not fail
      // the claim of the others: the batch is retried row by row and the
      // refused job is set aside with its schedule_error.
      const refusedJobs = new Map<number, string>();
      const refusedUpdates = await eachAloneOnFailure(updates, (us) =>
        updateJobs(trx, us, opts.claimant),
      );
      for (const { item, err } of refusedUpdates) {
        refusedJobs.set(
          item.id,
          `the claim could not store this job's next run: ${errorText(err)}`,
        );
      }
      if (result.runs.length > 0) {
        const inserted: PlannedRun[] = [];
        const refusedRuns = await eachAloneOnFailure(result.runs, async (rs) => {
          inserted.push(...(await insertRuns(trx, rs, queuedAt, opts.claimant)));
        });
        for (const { item, err } of refusedRuns) {
          if (!refusedJobs.has(item.jobId))
            refusedJobs.set(
              item.jobId,
              `the claim could not record this job's run: ${errorText(err)}`,
            );
        }
        result.runs = inserted;
      }
      if (result.replaced.length > 0) {
        // Only those whose new run was written: a refused job keeps its old run.
        const created = new Set(result.runs.map((r) => r.runId));
        result.replaced = await markReplaced(
          trx,
          result.replaced.filter((r) => created.has(r.by)),
        );
      }
      if (result.recorded.length > 0) {
        const inserted: RecordedRun[] = [];
        // A record the database refuses is dropped: its run never ran either way.
        await eachAloneOnFailure(result.recorded, async (rs) => {
          inserted.push(...(await insertRecorded(trx, rs, queuedAt, opts.claimant)));
        });
        result.recorded = inserted;
        // Told to cronq-results in this same transaction (run_notices).
        await insertMissedNotices(trx, inserted, queuedAt);
      }
      for (const [jobId, reason] of refusedJobs) {
        const text = storableReason(reason);
        await markRefused(trx, jobId, text, opts.claimant);
        result.scheduleErrors.push({
          jobId,
          jobName: rows.get(jobId)?.name ?? `job-${jobId}`,
          error: text,
        });
      }
      return result;
    },
    { isolationLevel: 'read committed' },
  );
}

/**
 * The status of each overlap-forbid job's active run, for planClaim: one
 * primary-key lookup for the batch. Read under the jobs' row locks, and the
 * results consumer clears active_run_id in the transaction that makes the
 * run final, so the check and the claim are one step whatever other
 * injectors do. No row (pruned, or never written) reads as null: not going.
 */
async function readActiveRuns(trx: Knex.Transaction, rows: Iterable<ClaimRow>): Promise<void> {
  const byRun = new Map<string, ClaimRow[]>();
  for (const r of rows) {
    r.active_status = null;
    if (r.active_run_id) byRun.set(r.active_run_id, [...(byRun.get(r.active_run_id) ?? []), r]);
  }
  if (byRun.size === 0) return;
  const found = await selectRows<{ run_id: string; status: string }>(
    trx,
    `SELECT run_id, status FROM runs WHERE run_id IN (${[...byRun.keys()].map(() => '?').join(', ')})`,
    [...byRun.keys()],
  );
  for (const f of found) for (const r of byRun.get(f.run_id) ?? []) r.active_status = f.status;
}

/**
 * Run `write` on all items in one statement; if the database refuses it for
 * a reason a retry cannot cure (a value it cannot store), run it item by
 * item and return the items it still refuses. A statement error rolls back
 * that statement only, so the transaction goes on; a transient error
 * (deadlock, lost connection) fails the whole claim as before.
 */
async function eachAloneOnFailure<T>(
  items: T[],
  write: (items: T[]) => Promise<void>,
): Promise<Array<{ item: T; err: unknown }>> {
  try {
    await write(items);
    return [];
  } catch (err) {
    if (isTransientDbError(err) || items.length === 0) throw err;
    if (items.length === 1) return [{ item: items[0]!, err }];
  }
  const refused: Array<{ item: T; err: unknown }> = [];
  for (const item of items) {
    try {
      await write([item]);
    } catch (err) {
      if (isTransientDbError(err)) throw err;
      refused.push({ item, err });
    }
  }
  return refused;
}

/** Longest reason kept in jobs.schedule_error (VARCHAR(512)). */
const REASON_MAX = 500;

/** Printable ASCII only, so it fits a column of any character set. */
function storableReason(reason: string): string {
  return reason.replace(/[^\x20-\x7e]/g, '?').slice(0, REASON_MAX);
}

/**
 * Set a job aside: schedule_error keeps it out of the due query (next_run
 * stays as it was), and a run-now flag is cleared so it does not come back
 * every claim. Only values any column takes, so this cannot be refused.
 */
async function markRefused(
  trx: Knex.Transaction,
  jobId: number,
  reason: string,
  claimant: string,
): Promise<void> {
  await execute(
    trx,
    'UPDATE jobs SET schedule_error = ?, run_now = 0, locked_by = ? WHERE id = ?',
    [reason, claimant, jobId],
  );
}

/** One statement for the whole batch: a join against a table of the new values. */
async function updateJobs(
  trx: Knex.Transaction,
  updates: ReturnType<typeof planClaim>['update'][],
  claimant: string,
): Promise<void> {
  const rowsSql: string[] = [];
  const bindings: unknown[] = [];
  for (const u of updates) {
    rowsSql.push('(?, ?, ?, ?, ?, ?, ?)');
    bindings.push(
      u.id,
      u.nextRun,
      u.endedAt,
      u.clearRunNow ? 1 : 0,
      u.scheduleError,
      u.activeRunId === undefined ? 0 : 1,
      u.activeRunId ?? null,
    );
  }
  // A table value constructor parses faster than a UNION ALL of 500 SELECTs.
  await execute(
    trx,
    `UPDATE jobs j JOIN (
       WITH u (id, next_run, ended_at, clear_run_now, schedule_error, set_active, active_run_id) AS (VALUES ${rowsSql.join(', ')})
       SELECT * FROM u) u ON j.id = u.id
        SET j.next_run = u.next_run, j.ended_at = u.ended_at, j.schedule_error = u.schedule_error,
            j.run_now = IF(u.clear_run_now = 1, 0, j.run_now),
            j.active_run_id = IF(u.set_active = 1, u.active_run_id, j.active_run_id), j.locked_by = ?`,
    [...bindings, claimant],
  );
}
