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
    if (typeof w !== 'string' || !Object.hasOwn(FAILURE_WINDOWS, w))
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
  // The newest failures of each kind in the window, from the (status, finished_at) index.
  const branch = `(SELECT run_id, job_id, job_name, status, finished_at FROM runs WHERE status = ? AND finished_at > UTC_TIMESTAMP(3) - INTERVAL ? SECOND ORDER BY finished_at DESC LIMIT ${SCAN_PER_STATUS})`;
  const inCategory =
    q.category === undefined ? '' : 'JOIN jobs jc ON jc.id = f.job_id AND jc.category_id = ?';
  const [failures] = (await db.raw(
    `SELECT f.* FROM (${STATUSES.map(() => branch).join(' UNION ALL ')}) f ${inCategory}`,
    [...STATUSES.flatMap((st) => [st, seconds]), ...(q.category === undefined ? [] : [q.category])],
  )) as unknown as [
    Array<{
      run_id: string;
      job_id: number;
      job_name: string | null;
      status: string;
      finished_at: Date;
    }>,
  ];
  // Grouped here: at most 3 × SCAN_PER_STATUS rows, each job's newest failure kept.
  const byJob = new Map<number, { n: number; first: Date; latest: (typeof failures)[number] }>();
  const perStatus = new Map<string, number>();
  for (const f of failures) {
    perStatus.set(f.status, (perStatus.get(f.status) ?? 0) + 1);
    const g = byJob.get(f.job_id);
    if (!g) byJob.set(f.job_id, { n: 1, first: f.finished_at, latest: f });
    else {
      g.n += 1;
      if (f.finished_at < g.first) g.first = f.finished_at;
      if (f.finished_at > g.latest.finished_at) g.latest = f;
    }
  }
  const capped = [...perStatus.values()].some((n) => n >= SCAN_PER_STATUS);
  const shown = [...byJob.entries()]
    .sort((a, b) => b[1].latest.finished_at.getTime() - a[1].latest.finished_at.getTime())
    .slice(0, MAX_GROUPS);
  if (shown.length === 0) return { groups: [], capped };
  const ids = shown.map(([id]) => id);
  const runIds = shown.map(([, g]) => g.latest.run_id);
  const [[jobs], [latest]] = (await Promise.all([
    db.raw(
      `SELECT j.id, c.name AS category FROM jobs j LEFT JOIN categories c ON c.id = j.category_id WHERE j.id IN (${ids.map(() => '?').join(', ')})`,
      ids,
    ),
    db.raw(
      `SELECT ${RUN_SUMMARY_SQL} FROM runs WHERE run_id IN (${runIds.map(() => '?').join(', ')})`,
      runIds,
    ),
  ])) as unknown as [[Array<{ id: number; category: string | null }>], [RunSummary[]]];
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const latestOf = new Map(latest.map((r) => [r.run_id, r]));
  return {
    capped,
    groups: shown.map(([jobId, g]) => ({
      job_id: jobId,
      job_name: g.latest.job_name ?? `job ${jobId}`,
      exists: byId.has(jobId),
      category: byId.get(jobId)?.category ?? null,
      count: g.n,
      first_at: g.first,
      last_at: g.latest.finished_at,
      latest: latestOf.get(g.latest.run_id) ?? null,
    })),
  };
}
