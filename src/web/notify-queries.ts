import type { Knex } from '../core/db';
import { durationWords } from '../core/policies';
import { shownTargets, type ShownTarget } from '../core/notify/shown-targets';
import { targetLabel, targetsOfText } from '../core/notify/targets';

/**
 * What the admin shows of notifications (docs/notifications.md): a job's
 * targets and last deliveries, a run's attempts, the failing and overdue
 * jobs of /failures. Targets are shown by targetLabel (a webhook's origin
 * only), never with their full URL.
 */

export interface TargetView {
  label: string;
  on: string[];
  repeat: string;
  format: string | null;
}

/** A target in the words of the job page (its category's, or every job's as cronq-results recorded them). */
export function targetView(t: ShownTarget): TargetView {
  return {
    label: t.label,
    on: [...t.on],
    repeat: durationWords(t.repeat_after_ms),
    format: t.format,
  };
}

/** A stored notifications.target, in words. */
function storedLabel(text: string): string {
  try {
    const t = JSON.parse(text) as { webhook?: string; email?: string[]; on?: string[] };
    const [parsed] = targetsOfText(
      JSON.stringify([{ on: t.on, ...(t.webhook ? { webhook: t.webhook } : { email: t.email }) }]),
    );
    return parsed ? targetLabel(parsed) : 'unknown target';
  } catch {
    return 'unknown target';
  }
}

export interface DeliveryView {
  id: number;
  event: string;
  run_id: string | null;
  state: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
  target: string;
}

export interface JobNotifyView {
  targets: TargetView[];
  deliveries: DeliveryView[];
  failingSince: Date | null;
  failures: number;
  overdueSince: Date | null;
}

type DeliveryRow = Omit<DeliveryView, 'target'> & { target: string };

export async function jobNotifyView(
  db: Knex,
  job: { id: number; category_id: number | null },
  limit = 10,
): Promise<JobNotifyView> {
  const [cat, state, rows] = await Promise.all([
    job.category_id !== null
      ? (db('categories').select('notify').where('id', job.category_id).first() as Promise<
          { notify: string | null } | undefined
        >)
      : Promise.resolve(undefined),
    db('jobs')
      .select('failing_since', 'failures', 'overdue_since')
      .where('id', job.id)
      .first() as Promise<
      { failing_since: Date | null; failures: number; overdue_since: Date | null } | undefined
    >,
    db('notifications')
      .select(
        'id',
        'event',
        'run_id',
        'state',
        'attempts',
        'last_status',
        'last_error',
        'created_at',
        'sent_at',
        'target',
      )
      .where('job_id', job.id)
      .orderBy('id', 'desc')
      .limit(limit) as Promise<DeliveryRow[]>,
  ]);
  return {
    targets: shownTargets(targetsOfText(cat?.notify)).map(targetView),
    deliveries: rows.map((r) => ({ ...r, target: storedLabel(r.target) })),
    failingSince: state?.failing_since ?? null,
    failures: Number(state?.failures ?? 0),
    overdueSince: state?.overdue_since ?? null,
  };
}

export interface AttemptView {
  notification_id: number;
  event: string;
  state: string;
  target: string;
  at: Date | null;
  status_code: number | null;
  error: string | null;
  duration_ms: number | null;
}

/** The notifications a run caused and each attempt to send them (at most 200 lines). */
export async function runNotifyAttempts(db: Knex, runId: string): Promise<AttemptView[]> {
  const [rows] = (await db.raw(
    `SELECT n.id AS notification_id, n.event, n.state, n.target, a.at, a.status_code, a.error, a.duration_ms
     FROM notifications n LEFT JOIN notification_attempts a ON a.notification_id = n.id
     WHERE n.run_id = ? ORDER BY n.id, a.id LIMIT 200`,
    [runId],
  )) as [AttemptView[]];
  return rows.map((r) => ({ ...r, target: storedLabel(r.target) }));
}

export interface ProblemJob {
  id: number;
  name: string;
  category: string | null;
  since: Date;
  failures: number;
  alert_after_ms: number | null;
}

/** Jobs with `column` set (overdue_since, failing_since), longest first. */
async function jobsSince(
  db: Knex,
  column: 'overdue_since' | 'failing_since',
  limit: number,
): Promise<ProblemJob[]> {
  const [rows] = (await db.raw(
    `SELECT j.id, j.name, c.name AS category, j.${column} AS since, j.failures, j.alert_after_ms
     FROM jobs j LEFT JOIN categories c ON c.id = j.category_id
     WHERE j.${column} IS NOT NULL ORDER BY j.${column}, j.id LIMIT ?`,
    [limit],
  )) as [ProblemJob[]];
  return rows;
}

/** Jobs overdue now (their own section on /failures), longest first. */
export function overdueJobs(db: Knex, limit = 100): Promise<ProblemJob[]> {
  return jobsSince(db, 'overdue_since', limit);
}

/** Jobs whose latest final run failed (a failing streak), longest first. */
export function failingJobs(db: Knex, limit = 100): Promise<ProblemJob[]> {
  return jobsSince(db, 'failing_since', limit);
}
