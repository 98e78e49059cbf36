import { sqlTime as sqlDateTime, type Knex } from '../../core/db';
import { decide, decideOverdue, type JobNotifyState, type Send } from '../../core/notify/storm';
import { targetKey, targetsOfText, type NotifyTarget } from '../../core/notify/targets';
import { writeOutbox, type OutboxItem } from './outbox';

/**
 * Notifications are written in the transaction that causes them
 * (docs/notifications.md): a result batch (store.ts), the lost-run sweep
 * (lost.ts) or the overdue check (overdue.ts), with the job rows already
 * locked, so a notification exists exactly when its cause was committed,
 * and a redelivered result (whose run is final already) writes none. They
 * are written as one `notification_outbox` row per transaction (500
 * notifications at most each), so a batch of failures costs the results
 * one insert, not one indexed row each; the sender (sender.ts, outbox.ts)
 * moves them into `notifications` and sends them later, apart from storing
 * results.
 */

/** The locked job row's columns these rules read (retries.ts selects them with its own). */
export interface JobNotifyRow {
  id: number;
  name?: string | null;
  category_id: number | null;
  failing_since: Date | null;
  failures: number;
  overdue_since: Date | null;
  alert_after_ms: number | string | null;
  /** JSON {target key: epoch ms}: when each target was last told of the failing streak. */
  notify_marks: string | null;
}

export const JOB_NOTIFY_COLUMNS =
  'category_id, failing_since, failures, overdue_since, alert_after_ms, notify_marks';

/** A run that became final in this transaction. */
export interface FinalOutcome {
  runId: string;
  jobId: number;
  status: string;
  jobName: string | null;
  /**
   * An outcome older than a success already stored (a missed occurrence
   * told after a later run succeeded): its targets are told, but it is no
   * part of the job's state: no failing streak is opened, no mark set.
   */
  stale?: boolean;
}

const STATE_COLUMNS = ['failing_since', 'failures', 'overdue_since', 'notify_marks'] as const;

/** A UTC DATETIME(3) literal of epoch ms. */
function sqlTime(ms: number | null): string | null {
  return ms === null ? null : sqlDateTime(new Date(ms));
}

async function dbNow(trx: Knex.Transaction): Promise<number> {
  const [rows] = (await trx.raw('SELECT UTC_TIMESTAMP(3) AS now')) as [Array<{ now: Date }>];
  return rows[0]!.now.getTime();
}

interface Category {
  name: string;
  targets: NotifyTarget[];
}

async function readCategories(
  trx: Knex.Transaction,
  ids: readonly number[],
): Promise<Map<number, Category>> {
  const out = new Map<number, Category>();
  if (ids.length === 0) return out;
  const [rows] = (await trx.raw(
    `SELECT id, name, notify FROM categories WHERE id IN (${ids.map(() => '?').join(',')})`,
    ids,
  )) as [Array<{ id: number; name: string; notify: string | null }>];
  for (const r of rows) out.set(Number(r.id), { name: r.name, targets: targetsOfText(r.notify) });
  return out;
}

/** A job's notify_marks as stored; anything unreadable is no marks (at worst one notification more). */
export function parseMarks(text: string | null): Map<string, { lastAt: number; held: number }> {
  const marks = new Map<string, { lastAt: number; held: number }>();
  if (!text) return marks;
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc && typeof doc === 'object' && !Array.isArray(doc))
      for (const [key, at] of Object.entries(doc as Record<string, unknown>))
        if (typeof at === 'number' && Number.isFinite(at)) marks.set(key, { lastAt: at, held: 0 });
  } catch {
    // Left empty.
  }
  return marks;
}

export function marksText(marks: JobNotifyState['marks']): string | null {
  if (marks.size === 0) return null;
  return JSON.stringify(Object.fromEntries([...marks].map(([k, m]) => [k, m.lastAt])));
}

/**
 * Keep only the marks of the targets that apply now: a target changed in a
 * category file (a rotated webhook token) is another key, and the old one
 * would otherwise stay until the next success, growing the row.
 */
function forgetOtherTargets(state: JobNotifyState, keys: ReadonlySet<string>): void {
  for (const key of [...state.marks.keys()]) if (!keys.has(key)) state.marks.delete(key);
}

function readStates(jobs: readonly JobNotifyRow[]): Map<number, JobNotifyState> {
  const states = new Map<number, JobNotifyState>();
  for (const j of jobs)
    states.set(Number(j.id), {
      failingSince: j.failing_since ? j.failing_since.getTime() : null,
      failures: Number(j.failures ?? 0),
      overdueSince: j.overdue_since ? j.overdue_since.getTime() : null,
      marks: parseMarks(j.notify_marks),
    });
  return states;
}

interface Pending {
  job: JobNotifyRow;
  jobName: string | null;
  category: string | null;
  runId: string | null;
  send: Send;
}

/**
 * Decide and write: the job's failure/overdue state, the per-target marks
 * and the notification rows. `retried` holds the runs for which a retry
 * was written in this transaction (their chain goes on). Returns how many
 * notifications were written.
 */
export async function recordNotifications(
  trx: Knex.Transaction,
  finals: readonly FinalOutcome[],
  retried: ReadonlySet<string>,
  jobs: ReadonlyMap<number, JobNotifyRow>,
  globalTargets: readonly NotifyTarget[],
): Promise<number> {
  const relevant = finals.filter((f) => {
    const j = jobs.get(f.jobId);
    if (!j || f.status === 'skipped') return false;
    // A success of a job that was neither failing nor overdue changes nothing but its overdue clock.
    return (
      f.status !== 'succeeded' ||
      j.failing_since !== null ||
      j.overdue_since !== null ||
      j.alert_after_ms !== null
    );
  });
  if (relevant.length === 0) return 0;
  const jobRows = [...new Set(relevant.map((f) => f.jobId))].map((id) => jobs.get(id)!);
  const categoryIds = [
    ...new Set(jobRows.map((j) => j.category_id).filter((c): c is number => c !== null)),
  ].map(Number);
  const [now, categories] = [await dbNow(trx), await readCategories(trx, categoryIds)];
  const states = readStates(jobRows);
  const pending: Pending[] = [];
  const succeeded = new Set<number>();
  // The keys of a category's targets (global ones included), computed once a batch.
  const keysByCategory = new Map<number | null, Set<string>>();
  const targetKeys = (categoryId: number | null, targets: readonly NotifyTarget[]) => {
    let keys = keysByCategory.get(categoryId);
    if (!keys) keysByCategory.set(categoryId, (keys = new Set(targets.map(targetKey))));
    return keys;
  };
  for (const f of relevant) {
    const job = jobs.get(f.jobId)!;
    const cat = job.category_id !== null ? categories.get(Number(job.category_id)) : undefined;
    const targets = [...globalTargets, ...(cat?.targets ?? [])];
    if (f.status === 'succeeded') succeeded.add(f.jobId);
    const state = states.get(f.jobId)!;
    // A stale outcome is decided on a copy: its targets are told, the job's state stays.
    const sends = decide(
      f.stale ? { ...state, marks: new Map(state.marks) } : state,
      { status: f.status, retried: retried.has(f.runId), at: now },
      targets,
    );
    if (state.marks.size > 0)
      forgetOtherTargets(
        state,
        targetKeys(job.category_id === null ? null : Number(job.category_id), targets),
      );
    for (const send of sends)
      pending.push({
        job,
        jobName: job.name ?? f.jobName ?? null,
        category: cat?.name ?? null,
        runId: f.runId,
        send,
      });
  }
  await writeState(trx, jobRows, states, succeeded, now);
  await writeOutbox(trx, outboxItems(pending), sqlTime(now)!);
  return pending.length;
}

/**
 * The overdue check's part (overdue.ts): `jobs` are locked and have just
 * been found overdue by the database clock.
 */
export async function recordOverdue(
  trx: Knex.Transaction,
  jobs: readonly JobNotifyRow[],
  globalTargets: readonly NotifyTarget[],
): Promise<number> {
  if (jobs.length === 0) return 0;
  const now = await dbNow(trx);
  const categories = await readCategories(
    trx,
    [...new Set(jobs.map((j) => j.category_id).filter((c): c is number => c !== null))].map(Number),
  );
  const states = readStates(jobs);
  const pending: Pending[] = [];
  for (const job of jobs) {
    const cat = job.category_id !== null ? categories.get(Number(job.category_id)) : undefined;
    const sends = decideOverdue(states.get(Number(job.id))!, now, [
      ...globalTargets,
      ...(cat?.targets ?? []),
    ]);
    for (const send of sends)
      pending.push({
        job,
        jobName: job.name ?? null,
        category: cat?.name ?? null,
        runId: null,
        send,
      });
  }
  await writeState(trx, jobs, states, new Set(), now);
  await writeOutbox(trx, outboxItems(pending), sqlTime(now)!);
  return pending.length;
}

async function writeState(
  trx: Knex.Transaction,
  jobs: readonly JobNotifyRow[],
  states: ReadonlyMap<number, JobNotifyState>,
  succeeded: ReadonlySet<number>,
  now: number,
): Promise<void> {
  const rows: Knex.RawBinding[][] = [];
  for (const j of jobs) {
    const id = Number(j.id);
    const s = states.get(id)!;
    const before = {
      failing_since: j.failing_since?.getTime() ?? null,
      failures: Number(j.failures ?? 0),
      overdue_since: j.overdue_since?.getTime() ?? null,
      notify_marks: j.notify_marks ?? null,
    };
    const after = {
      failing_since: s.failingSince,
      failures: s.failures,
      overdue_since: s.overdueSince,
      notify_marks: marksText(s.marks),
    };
    const resetClock = succeeded.has(id) && j.alert_after_ms !== null;
    if (resetClock || STATE_COLUMNS.some((c) => before[c] !== after[c]))
      rows.push([
        id,
        sqlTime(after.failing_since),
        after.failures,
        sqlTime(after.overdue_since),
        after.notify_marks,
        resetClock ? 1 : 0,
      ]);
  }
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    const derived = chunk
      .map((_, k) =>
        k === 0
          ? 'SELECT ? AS id, ? AS fs, ? AS n, ? AS od, ? AS marks, ? AS reset'
          : 'SELECT ?, ?, ?, ?, ?, ?',
      )
      .join(' UNION ALL ');
    await trx.raw(
      `UPDATE jobs j JOIN (${derived}) c ON c.id = j.id
       SET j.failing_since = c.fs, j.failures = c.n, j.overdue_since = c.od, j.notify_marks = c.marks,
           j.alert_base_at = IF(c.reset = 1, ?, j.alert_base_at)`,
      [...chunk.flat(), sqlTime(now)],
    );
  }
}

function outboxItems(pending: readonly Pending[]): OutboxItem[] {
  return pending.map((p) => {
    const t = p.send.target;
    return {
      job_id: Number(p.job.id),
      job_name: p.jobName,
      category: p.category,
      run_id: p.runId,
      event: p.send.event,
      failures: p.send.failures,
      target_key: p.send.key,
      target: {
        on: t.on,
        webhook: t.webhook,
        format: t.format,
        email: t.email,
        repeat_after_ms: t.repeatAfterMs,
      },
    };
  });
}
