import { format } from 'mysql2';
import { sqlTime, type Knex } from '../core/db';
import type { ResultMessage } from '../core/messages';
import { foldResults, type EventRow, type RunChange } from './fold';
import { eventsToRecord, readStoredRuns } from './closed-runs';
import { refreshJobStatus } from './job-status';
import {
  becameFinal,
  JOB_POLICY_COLUMNS,
  settleFinalRuns,
  type JobPolicyRow,
  type RetryScheduled,
} from './retries';
import { recordNotifications } from './notify/record';
import type { NotifyTarget } from '../core/notify/targets';

/**
 * Write one batch of result messages in ONE transaction with a few
 * multi-row statements:
 *   1. lock the batch's job rows (in id order, so two consumers touching the
 *      same jobs queue up instead of deadlocking) and learn which still exist;
 *   2. INSERT IGNORE the events rows (unique message_key = run_id:type makes
 *      a redelivered message insert nothing); none for jobs that are gone,
 *      since events.job_id cascades from jobs, and none for runs already
 *      final (src/results/closed-runs.ts: the late-result rule);
 *   3. upsert the runs rows (a result for a run nobody recorded still makes
 *      one) with the state machine in the ON DUPLICATE KEY UPDATE clause;
 *   4. move the jobs' status columns forward to the newest of these runs;
 *   5. for the runs this batch made final, write the retries their jobs'
 *      policies ask for and move or clear jobs.active_run_id (retries.ts);
 *   6. and the notifications they cause (notify/record.ts).
 * Every statement is idempotent, so writing the same batch twice, or the
 * same message in two batches, leaves the same rows as writing it once.
 */

export interface WriteSummary {
  messages: number;
  runs: number;
  events: number;
  /** Run ids whose job row no longer exists (recorded on the run only). */
  runsOfMissingJobs: string[];
  /** Retry runs written in this transaction (src/results/retries.ts). */
  retries: RetryScheduled[];
  /** Notifications written in this transaction (notify/record.ts). */
  notifications: number;
  /**
   * Runs the ledger had `killed` before they started, for which this batch
   * brings a start and no end: a runner that never heard the kill order
   * (started after it) runs them. The caller sends the order again.
   */
  startedAfterKill: string[];
}

/**
 * The runs of the batch that are going (a start or a heartbeat, no end)
 * although the ledger has them `killed`: killed before they started, then
 * started by a runner that never heard the order. Heartbeats write no
 * event, so their runs are not among `stored`: those are looked up here,
 * by primary key, without a lock (only read).
 */
async function killedButGoing(
  trx: Knex.Transaction,
  runs: readonly RunChange[],
  stored: ReadonlyMap<string, { status: string }>,
): Promise<string[]> {
  const going = runs.filter((r) => r.startedAt !== null && r.outcome === null);
  const unread = going.filter((r) => !stored.has(r.runId)).map((r) => r.runId);
  const killed = new Set<string>();
  for (let i = 0; i < unread.length; i += 5000) {
    const chunk = unread.slice(i, i + 5000);
    const [rows] = (await trx.raw(
      `SELECT run_id FROM runs WHERE run_id IN (${chunk.map(() => '?').join(',')}) AND status = 'killed'`,
      chunk,
    )) as [Array<{ run_id: string }>];
    for (const r of rows) killed.add(r.run_id);
  }
  return going
    .filter((r) => stored.get(r.runId)?.status === 'killed' || killed.has(r.runId))
    .map((r) => r.runId);
}

/** Sizes the statements of a batch are kept under (src/results/packet.ts derives them from the server). */
export interface WriteLimits {
  /**
   * Most bytes one multi-row statement may take; a single row larger than
   * this is still sent alone (fields are bounded at parse so one row
   * always fits the server's max_allowed_packet).
   */
  maxStatementBytes: number;
}

export const DEFAULT_WRITE_LIMITS: WriteLimits = { maxStatementBytes: 4 * 1024 * 1024 };

/** Outcomes a result can give. */
const RESOLVED = `('succeeded', 'failed', 'timed_out', 'missed', 'killed')`;
/**
 * Stored statuses no outcome replaces: the outcomes, `skipped` (the
 * injector's; it never ran) and `killed` (also written by the web for a run
 * killed before it started: a late `starting` or `finished` never undoes it).
 */
const SETTLED = `('succeeded', 'failed', 'timed_out', 'missed', 'skipped', 'killed')`;
/** The row is this run's, and of the job the message names (a result naming another job changes nothing). */
const SAME_ROW = `(runs.run_id = VALUES(run_id) AND runs.job_id = VALUES(job_id))`;
/** The incoming change is an outcome and the stored row has none yet (`lost` may still learn the truth). */
const APPLY_OUTCOME = `(${SAME_ROW} AND VALUES(status) IN ${RESOLVED} AND runs.status NOT IN ${SETTLED})`;
/**
 * The late-result rule: a run in a final state (succeeded, failed,
 * timed_out, missed, skipped, lost) is closed. Results change nothing on it (not host,
 * heartbeat_at, started_at, job_name), except the one outcome that
 * corrects a `lost` run (APPLY_OUTCOME).
 */
const TOUCH = `(${SAME_ROW} AND (runs.status IN ('queued', 'running') OR ${APPLY_OUTCOME}))`;

/*
 * MariaDB evaluates ON DUPLICATE KEY UPDATE assignments left to right and
 * later ones see the new values of earlier ones (unless sql_mode has
 * SIMULTANEOUS_ASSIGNMENT, where all see the old ones), so `status` is
 * assigned last and every condition reads only the old `status`: right
 * under either rule.
 *
 * SAME_ROW guards against a collision on the other unique key,
 * (job_id, scheduled_for): a run nobody recorded gets its start time as
 * scheduled_for, which could equal another run's occurrence; that other run
 * must not be touched (the caller then retries with a shifted time).
 */
const RUN_UPSERT_HEAD = `INSERT INTO runs
  (run_id, job_id, job_name, scheduled_for, status, host, queued_at, started_at, finished_at, heartbeat_at, return_code, run_time, output_tail, reason, output_total, stderr_lines)
VALUES `;
const RUN_ROW = `(?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?, ?, ?, ?, ?, ?)`;
const RUN_UPSERT_TAIL = `
ON DUPLICATE KEY UPDATE
  job_name = IF(${TOUCH}, COALESCE(runs.job_name, VALUES(job_name)), runs.job_name),
  host = IF(${TOUCH}, COALESCE(VALUES(host), runs.host), runs.host),
  started_at = IF(${TOUCH}, COALESCE(LEAST(runs.started_at, VALUES(started_at)), runs.started_at, VALUES(started_at)), runs.started_at),
  heartbeat_at = IF(${TOUCH}, GREATEST(COALESCE(runs.heartbeat_at, VALUES(heartbeat_at)), VALUES(heartbeat_at)), runs.heartbeat_at),
  finished_at = IF(${APPLY_OUTCOME}, VALUES(finished_at), runs.finished_at),
  return_code = IF(${APPLY_OUTCOME}, VALUES(return_code), runs.return_code),
  run_time = IF(${APPLY_OUTCOME}, VALUES(run_time), runs.run_time),
  output_tail = IF(${APPLY_OUTCOME}, VALUES(output_tail), runs.output_tail),
  output_total = IF(${APPLY_OUTCOME}, VALUES(output_total), runs.output_total),
  stderr_lines = IF(${APPLY_OUTCOME}, VALUES(stderr_lines), runs.stderr_lines),
  reason = IF(${APPLY_OUTCOME},
    IF(runs.status = 'lost',
       LEFT(CONCAT_WS('; ', VALUES(reason), CONCAT('result arrived after the run was marked lost (', COALESCE(runs.reason, ''), ')')), 1024),
       VALUES(reason)),
    runs.reason),
  status = CASE
    WHEN ${APPLY_OUTCOME} THEN VALUES(status)
    WHEN ${SAME_ROW} AND VALUES(status) = 'running' AND runs.status = 'queued' THEN 'running'
    ELSE runs.status
  END`;

/**
 * Run a statement whose values are inlined here, escaped by the driver's
 * own formatter: knex would otherwise scan the 10,000 placeholders of a
 * batch statement a second time before the driver does. Only strings,
 * numbers and null are passed (times are already UTC literals), so the
 * result does not depend on a time zone.
 */
function run(
  trx: Knex.Transaction | Knex,
  text: string,
  values: readonly Knex.RawBinding[],
): Knex.Raw {
  return trx.raw(format(text, values as Parameters<typeof format>[1]));
}

function runValues(c: RunChange, scheduledShiftMs: number): Knex.RawBinding[] {
  const o = c.outcome;
  const known = c.startedAt ?? c.firstSentAt;
  const scheduledFor = new Date(known.getTime() + scheduledShiftMs);
  return [
    c.runId,
    c.jobId,
    c.jobName,
    sqlTime(scheduledFor),
    o ? o.status : 'running',
    c.host,
    sqlTime(scheduledFor),
    c.startedAt && sqlTime(c.startedAt),
    o ? sqlTime(o.finishedAt) : null,
    o ? o.returnCode : null,
    o ? o.runTime : null,
    o ? o.output : null,
    o ? o.reason : null,
    o ? o.outputTotal : null,
    o ? o.stderrLines : null,
  ];
}

/** Bytes of a string once escaped into a statement: every byte may become two, plus quotes. */
function textBytes(s: string | null | undefined): number {
  return s ? 2 * Buffer.byteLength(s) + 2 : 4;
}

/** An upper bound of one run row's share of the upsert statement. */
function rowBytes(c: RunChange): number {
  return (
    400 +
    textBytes(c.outcome?.output) +
    textBytes(c.outcome?.reason) +
    textBytes(c.outcome?.stderrLines) +
    textBytes(c.jobName) +
    textBytes(c.host)
  );
}

async function upsertRuns(
  trx: Knex.Transaction,
  runs: readonly RunChange[],
  limits: WriteLimits,
  shiftMs = 0,
): Promise<number> {
  let affected = 0;
  let i = 0;
  while (i < runs.length) {
    const rows: string[] = [];
    const bindings: Knex.RawBinding[] = [];
    let bytes = 0;
    while (
      i < runs.length &&
      (rows.length === 0 || bytes + rowBytes(runs[i]!) < limits.maxStatementBytes)
    ) {
      bytes += rowBytes(runs[i]!);
      rows.push(RUN_ROW);
      bindings.push(...runValues(runs[i]!, shiftMs));
      i += 1;
    }
    const [res] = (await run(
      trx,
      RUN_UPSERT_HEAD + rows.join(',') + RUN_UPSERT_TAIL,
      bindings,
    )) as [{ affectedRows: number }];
    affected += res.affectedRows;
  }
  return affected;
}

async function insertEvents(
  trx: Knex.Transaction,
  events: readonly EventRow[],
  limits: WriteLimits,
): Promise<void> {
  let i = 0;
  while (i < events.length) {
    const chunk: EventRow[] = [];
    let bytes = 0;
    while (i < events.length && chunk.length < 2000 && bytes < limits.maxStatementBytes / 2) {
      bytes += 300 + textBytes(events[i]!.host);
      chunk.push(events[i]!);
      i += 1;
    }
    const bindings: Knex.RawBinding[] = [];
    for (const e of chunk)
      bindings.push(
        e.job_id,
        sqlTime(e.datetime),
        e.run_id,
        e.type,
        e.host,
        e.return_code,
        e.message_key,
      );
    await run(
      trx,
      `INSERT IGNORE INTO events (job_id, datetime, run_id, type, host, return_code, message_key) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(',')}`,
      bindings,
    );
  }
}

/** Run ids of `ids` that have no runs row. */
async function missingRuns(trx: Knex.Transaction, ids: readonly string[]): Promise<Set<string>> {
  const missing = new Set(ids);
  for (let i = 0; i < ids.length; i += 5000) {
    const chunk = ids.slice(i, i + 5000);
    const [rows] = (await trx.raw(
      `SELECT run_id FROM runs WHERE run_id IN (${chunk.map(() => '?').join(',')})`,
      chunk,
    )) as [Array<{ run_id: string }>];
    for (const r of rows) missing.delete(r.run_id);
  }
  return missing;
}

async function countRuns(trx: Knex.Transaction, ids: readonly string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 5000) {
    const chunk = ids.slice(i, i + 5000);
    const [rows] = (await trx.raw(
      `SELECT COUNT(*) AS n FROM runs WHERE run_id IN (${chunk.map(() => '?').join(',')})`,
      chunk,
    )) as [Array<{ n: number }>];
    n += Number(rows[0]!.n);
  }
  return n;
}

/**
 * Runs in the pool's isolation level. cronq-results opens its pool with
 * READ COMMITTED (set once per connection): no gap locks, so fewer lock
 * waits and deadlocks between consumers, and faster batches
 * (docs/results.md). Correct under REPEATABLE READ too: the job rows are locked first,
 * every changed row is changed by a locking statement that reads its latest
 * version, and every writer of run outcomes (batches, the lost-run sweep)
 * takes the job locks first, so the job-status statement's reads of runs
 * cannot race with another consumer's half-done batch.
 */

export async function writeResults(
  db: Knex,
  messages: readonly ResultMessage[],
  limits: WriteLimits = DEFAULT_WRITE_LIMITS,
  random: () => number = Math.random,
  notifyTargets: readonly NotifyTarget[] = [],
): Promise<WriteSummary> {
  const batch = foldResults(messages);
  if (batch.runs.length === 0)
    return {
      messages: 0,
      runs: 0,
      events: 0,
      runsOfMissingJobs: [],
      retries: [],
      notifications: 0,
      startedAfterKill: [],
    };
  return db.transaction(async (trx) => {
    const ids = batch.jobIds;
    const [jobRows] = (await run(
      trx,
      `SELECT name, ${JOB_POLICY_COLUMNS} FROM jobs WHERE id IN (${ids.map(() => '?').join(',')}) ORDER BY id FOR UPDATE`,
      ids,
    )) as [Array<JobPolicyRow & { name: string }>];
    const jobs = new Map(jobRows.map((j) => [Number(j.id), j]));
    for (const r of batch.runs) if (r.jobName === null) r.jobName = jobs.get(r.jobId)?.name ?? null;

    const jobEvents = batch.events.filter((e) => jobs.has(e.job_id));
    const stored = await readStoredRuns(trx, jobEvents);
    const events = eventsToRecord(batch.runs, jobEvents, stored);
    const startedAfterKill = await killedButGoing(trx, batch.runs, stored);
    await insertEvents(trx, events, limits);

    const affected = await upsertRuns(trx, batch.runs, limits);
    const runIds = batch.runs.map((r) => r.runId);
    // Only a (job_id, scheduled_for) collision of an unrecorded run leaves a
    // row unwritten; it is then written again one millisecond later until it
    // fits. MariaDB counts 2 affected rows for each existing row that
    // changed, so when every row did (the common case: runs the injector
    // recorded; heartbeat_at changes with every write) no collision can have
    // happened and the check is skipped; otherwise one COUNT tells.
    if (affected !== 2 * runIds.length && (await countRuns(trx, runIds)) < runIds.length) {
      for (let shift = 1; shift <= 1000; shift += 1) {
        const missing = await missingRuns(trx, runIds);
        if (missing.size === 0) break;
        await upsertRuns(
          trx,
          batch.runs.filter((r) => missing.has(r.runId)),
          limits,
          shift,
        );
      }
    }

    await refreshJobStatus(trx, runIds);
    const finals = becameFinal(batch.runs, stored);
    const retries = await settleFinalRuns(trx, finals, jobs, random);
    const notifications = await recordNotifications(
      trx,
      finals,
      new Set(retries.map((r) => r.runId)),
      jobs,
      notifyTargets,
    );
    return {
      notifications,
      startedAfterKill,
      messages: messages.length,
      runs: batch.runs.length,
      events: events.length,
      runsOfMissingJobs: batch.runs.filter((r) => !jobs.has(r.jobId)).map((r) => r.runId),
      retries,
    };
  });
}
