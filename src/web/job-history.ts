import type { Knex } from '../core/db';
import { ValidationError } from '../core/errors';
import { RUN_STATUSES, type RunStatus } from '../core/runs';
import { RUN_SUMMARY_SQL, type RunSummary } from './queries';

/**
 * The job page's history: a chart of the recent runs' durations and the
 * success rate over them (from the runs the page already read, so no
 * extra query), and the runs table paged and filtered by status.
 */

/** Runs in the chart and the success rate: the page's recent runs. */
export const CHART_RUNS = 50;
/** Runs per page of the job page's table. */
export const RUNS_PER_PAGE = 50;
/** Deepest page of a job's runs (an OFFSET of at most this × RUNS_PER_PAGE index entries). */
export const MAX_RUNS_PAGE = 1000;

export interface ChartBar {
  runId: string;
  status: string;
  /** Seconds. */
  seconds: number;
  /** Height in the chart's units (0-100), at least 1 so a short run still shows. */
  height: number;
  at: Date;
}

export interface JobHistory {
  bars: ChartBar[];
  /** The longest duration among the bars, seconds (the chart's top). */
  maxSeconds: number;
  /** Runs that ran and ended (succeeded, failed, timed out, lost), and how many of each. */
  ended: number;
  byStatus: Record<string, number>;
  /** succeeded / ended, 0-100, or null when none ended. */
  successRate: number | null;
}

const RAN_AND_ENDED = new Set(['succeeded', 'failed', 'timed_out', 'lost', 'killed']);

/** From newest-first runs: the bars oldest first, the success rate over those that ran and ended. */
export function jobHistory(
  runs: ReadonlyArray<
    Pick<RunSummary, 'run_id' | 'status' | 'run_time' | 'started_at' | 'finished_at' | 'queued_at'>
  >,
): JobHistory {
  const byStatus: Record<string, number> = {};
  const raw: Array<Omit<ChartBar, 'height'>> = [];
  for (const r of runs.slice(0, CHART_RUNS)) {
    if (!RAN_AND_ENDED.has(r.status)) continue;
    byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    const seconds =
      r.run_time ??
      (r.started_at && r.finished_at
        ? Math.max(0, (r.finished_at.getTime() - r.started_at.getTime()) / 1000)
        : null);
    if (seconds !== null && Number.isFinite(seconds))
      raw.push({ runId: r.run_id, status: r.status, seconds, at: r.started_at ?? r.queued_at });
  }
  const ended = Object.values(byStatus).reduce((a, b) => a + b, 0);
  const maxSeconds = raw.reduce((m, b) => Math.max(m, b.seconds), 0);
  const bars = raw.reverse().map((b) => ({
    ...b,
    height: maxSeconds > 0 ? Math.max(1, Math.round((b.seconds / maxSeconds) * 100)) : 1,
  }));
  return {
    bars,
    maxSeconds,
    ended,
    byStatus,
    successRate: ended === 0 ? null : Math.round(((byStatus.succeeded ?? 0) / ended) * 1000) / 10,
  };
}

export interface RunsPageQuery {
  status?: RunStatus;
  /** From 1. */
  page: number;
}

/** `?runs_status=` and `?runs_page=` of the job page; unknown values are refused. */
export function runsPageParams(query: Record<string, unknown>): RunsPageQuery {
  const out: RunsPageQuery = { page: 1 };
  const status = query.runs_status;
  if (status !== undefined && status !== '') {
    if (typeof status !== 'string' || !(RUN_STATUSES as readonly string[]).includes(status))
      throw new ValidationError(`runs_status: expected one of ${RUN_STATUSES.join(', ')}`, [
        { path: 'runs_status', message: 'unknown status' },
      ]);
    out.status = status as RunStatus;
  }
  const page = query.runs_page;
  if (page !== undefined && page !== '') {
    if (typeof page !== 'string' || !/^\d{1,4}$/.test(page) || +page < 1 || +page > MAX_RUNS_PAGE)
      throw new ValidationError(`runs_page: expected a page from 1 to ${MAX_RUNS_PAGE}`, [
        { path: 'runs_page', message: 'not a page number' },
      ]);
    out.page = Number(page);
  }
  return out;
}

/** One page of a job's runs, newest first (the (job_id, queued_at, status, …) index), and whether more follow. */
export async function jobRunsPage(
  db: Knex,
  jobId: number,
  q: RunsPageQuery,
): Promise<{ runs: RunSummary[]; more: boolean }> {
  const where = q.status ? 'job_id = ? AND status = ?' : 'job_id = ?';
  const bindings: unknown[] = q.status ? [jobId, q.status] : [jobId];
  const [rows] = (await db.raw(
    `SELECT ${RUN_SUMMARY_SQL} FROM runs WHERE ${where} ORDER BY queued_at DESC, run_id DESC LIMIT ? OFFSET ?`,
    [...bindings, RUNS_PER_PAGE + 1, (q.page - 1) * RUNS_PER_PAGE] as Knex.RawBinding[],
  )) as unknown as [RunSummary[]];
  return { runs: rows.slice(0, RUNS_PER_PAGE), more: rows.length > RUNS_PER_PAGE };
}

/**
 * The job as its category file would hold it: the fields written there
 * (routing_key only when not `default`, timeout and description only when
 * set, the policy fields as written, `enabled` only when false), 2-space JSON.
 */
export function definitionJson(
  job: {
    name: string;
    command: string | null;
    routing_key: string | null;
    timeout: number | null;
    description?: string | null;
    policies: string | null;
    enabled: number | boolean;
  },
  /** The schedule as written (or the original's interval as PTnS); null: none. */
  schedule: string | null,
): string {
  const out: Record<string, unknown> = { name: job.name };
  if (schedule) out.schedule = schedule;
  out.command = job.command ?? '';
  const key = job.routing_key?.trim();
  if (key && key !== 'default') out.routing_key = key;
  if (job.timeout) out.timeout = job.timeout;
  if (job.description) out.description = job.description;
  if (job.policies) {
    try {
      const p: unknown = JSON.parse(job.policies);
      if (p && typeof p === 'object' && !Array.isArray(p)) Object.assign(out, p);
    } catch {
      // A hand-edited row: the page shows the policies that apply instead.
    }
  }
  if (!job.enabled) out.enabled = false;
  return JSON.stringify(out, null, 2);
}
