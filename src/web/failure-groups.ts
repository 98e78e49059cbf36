import type { Knex } from '../core/db';
import { ValidationError } from '../core/errors';
import { RUN_SUMMARY_SQL, type RunSummary } from './queries';

/**
 * `/failures` grouped by job: for each job that failed (failed, timed out,
 * lost) within the chosen window, how many times, since when, when last,
 * and its latest failed run; optionally one category's jobs only. Reads the
 * failures of the window from the (status, finished_at) index, the newest
 * SCAN_PER_STATUS of each status at most (so a page costs the same however
 * many runs failed; the page says when the counts stop there), and one
 * small query for the latest run of each job shown.
 */

export const FAILURE_WINDOWS = { '1h': 3600, '24h': 86_400, '7d': 7 * 86_400 } as const;
export type FailureWindow = keyof typeof FAILURE_WINDOWS;
const STATUSES = ['failed', 'timed_out', 'lost'] as const;
const SCAN_PER_STATUS = 500;
/** Jobs listed at most. */
export const MAX_GROUPS = 100;

export interface FailureGroup {
  job_id: number;
  job_name: string;
  /** null: the job has been removed (its runs keep its name). */
  exists: boolean;
  category: string | null;
  count: number;
  first_at: Date;
  last_at: Date;
  latest: RunSummary | null;
}

export interface FailureQuery {
  window: FailureWindow;
  category?: number;
}

/** `?window=` (1h, 24h (default), 7d) and `?category=<id>`; anything else is refused. */
export function failureParams(query: Record<string, unknown>): FailureQuery {
  const out: FailureQuery = { window: '24h' };
  const w = query.window;
  if (w !== undefined && w !== '') {
    if (typeof w !== 'string' || !(w in FAILURE_WINDOWS))
      throw new ValidationError(
        `window: expected one of ${Object.keys(FAILURE_WINDOWS).join(', ')}`,
        [{ path: 'window', message: 'unknown window' }],
      );
    out.window = w as FailureWindow;
  }
  const c = query.category;
  if (c !== undefined && c !== '') {
    if (typeof c !== 'string' || !/^\d{1,10}$/.test(c))
      throw new ValidationError('category: expected a category id', [
        { path: 'category', message: 'not an id' },
      ]);
    out.category = Number(c);
  }
  return out;
}

export async function failureGroups(
  db: Knex,
  q: FailureQuery,
): Promise<{ groups: FailureGroup[]; capped: boolean }> {
  const seconds = FAILURE_WINDOWS[q.window];
  const branch = `(SELECT job_id, job_name, finished_at FROM runs WHERE status = ? AND finished_at > UTC_TIMESTAMP(3) - INTERVAL ${seconds} SECOND ORDER BY finished_at DESC LIMIT ${SCAN_PER_STATUS})`;
  const inCategory =
    q.category === undefined ? '' : 'JOIN jobs jc ON jc.id = f.job_id AND jc.category_id = ?';
  const [rows] = (await db.raw(
    `SELECT f.job_id, MAX(f.job_name) AS job_name, COUNT(*) AS n, MIN(f.finished_at) AS first_at,
            MAX(f.finished_at) AS last_at
       FROM (${STATUSES.map(() => branch).join(' UNION ALL ')}) f ${inCategory}
      GROUP BY f.job_id ORDER BY last_at DESC LIMIT ${MAX_GROUPS}`,
    [...STATUSES, ...(q.category === undefined ? [] : [q.category])],
  )) as unknown as [
    Array<{
      job_id: number;
      job_name: string | null;
      n: number | string;
      first_at: Date;
      last_at: Date;
    }>,
  ];
  const [counts] = (await db.raw(
    `SELECT GREATEST(${STATUSES.map(() => `(SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE status = ? AND finished_at > UTC_TIMESTAMP(3) - INTERVAL ${seconds} SECOND LIMIT ${SCAN_PER_STATUS}) x)`).join(', ')}) AS n`,
    [...STATUSES],
  )) as unknown as [Array<{ n: number | string }>];
  const capped = Number(counts[0]?.n ?? 0) >= SCAN_PER_STATUS;
  if (rows.length === 0) return { groups: [], capped };
  const ids = rows.map((r) => r.job_id);
  const [jobs] = (await db.raw(
    `SELECT j.id, c.name AS category FROM jobs j LEFT JOIN categories c ON c.id = j.category_id WHERE j.id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  )) as unknown as [Array<{ id: number; category: string | null }>];
  const byId = new Map(jobs.map((j) => [j.id, j]));
  // Each job's latest failure: its last finished_at, read through the (status, finished_at) index.
  const latestBranch = `(SELECT ${RUN_SUMMARY_SQL} FROM runs FORCE INDEX (idx_runs_status_finished) WHERE status IN ('failed', 'timed_out', 'lost') AND finished_at = ? AND job_id = ? LIMIT 1)`;
  const [latest] = (await db.raw(
    rows.map(() => latestBranch).join(' UNION ALL '),
    rows.flatMap((r) => [r.last_at, r.job_id]),
  )) as unknown as [RunSummary[]];
  const latestOf = new Map(latest.map((r) => [r.job_id, r]));
  return {
    capped,
    groups: rows.map((r) => ({
      job_id: r.job_id,
      job_name: r.job_name ?? `job ${r.job_id}`,
      exists: byId.has(r.job_id),
      category: byId.get(r.job_id)?.category ?? null,
      count: Number(r.n),
      first_at: r.first_at,
      last_at: r.last_at,
      latest: latestOf.get(r.job_id) ?? null,
    })),
  };
}
