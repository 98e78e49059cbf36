import type { Knex } from '../core/db';
import { ValidationError } from '../core/errors';
import { applyTextFilter, jobsInOrder, type JobWithCategory } from './queries';

/**
 * The overview of `/`: every job's current status as one SQL expression
 * over its own columns (jobs.paused_at, and the status columns the results
 * consumer keeps on the job, src/results/job-status.ts), so counting the
 * jobs by status and filtering by it read the jobs table alone, one
 * indexed-free scan of a few milliseconds at 10,000 jobs, never the runs.
 *
 * A paused job counts as paused whatever its last run did; a job whose run
 * is going counts as running; otherwise the newest ended run's status
 * decides; a job with no run at all is "never run".
 */
const STATUS_SQL = `CASE
  WHEN j.paused_at IS NOT NULL THEN 'paused'
  WHEN TRIM(j.current_status) = 'running' THEN 'running'
  WHEN COALESCE(NULLIF(TRIM(j.last_run_status), ''), NULLIF(TRIM(j.current_status), '')) IS NULL THEN 'never'
  ELSE COALESCE(NULLIF(TRIM(j.last_run_status), ''), TRIM(j.current_status))
END`;

/** The chips of `/`, in the order shown: what an operator looks for first. */
export const OVERVIEW_CHIPS = [
  { key: 'failed', label: 'failing' },
  { key: 'timed_out', label: 'timed out' },
  { key: 'lost', label: 'lost' },
  { key: 'running', label: 'running' },
  { key: 'never', label: 'never run' },
  { key: 'paused', label: 'paused' },
] as const;
export type OverviewStatus = (typeof OVERVIEW_CHIPS)[number]['key'];

/** Statuses that make a job "failing" when sorting by last failure. */
const FAILING = `('failed', 'timed_out', 'lost')`;

export const OVERVIEW_SORTS = ['category', 'failure', 'next'] as const;
export type OverviewSort = (typeof OVERVIEW_SORTS)[number];

export interface OverviewQuery {
  page: number;
  perPage: number;
  q?: string;
  status?: OverviewStatus;
  sort: OverviewSort;
}

/** `?status=` and `?sort=` of `/`: absent is the default, anything else unknown is refused. */
export function overviewParams(query: Record<string, unknown>): {
  status?: OverviewStatus;
  sort: OverviewSort;
} {
  const status = query.status;
  const sort = query.sort;
  const out: { status?: OverviewStatus; sort: OverviewSort } = { sort: 'category' };
  if (status !== undefined && status !== '') {
    const known = OVERVIEW_CHIPS.find((c) => c.key === status);
    if (!known)
      throw new ValidationError(
        `status: expected one of ${OVERVIEW_CHIPS.map((c) => c.key).join(', ')}`,
        [{ path: 'status', message: 'unknown status' }],
      );
    out.status = known.key;
  }
  if (sort !== undefined && sort !== '') {
    if (typeof sort !== 'string' || !(OVERVIEW_SORTS as readonly string[]).includes(sort))
      throw new ValidationError(`sort: expected one of ${OVERVIEW_SORTS.join(', ')}`, [
        { path: 'sort', message: 'unknown sort' },
      ]);
    out.sort = sort as OverviewSort;
  }
  return out;
}

function base(db: Knex, q: string | undefined): Knex.QueryBuilder {
  const qb = db('jobs as j').leftJoin('categories as c', 'c.id', 'j.category_id');
  applyTextFilter(qb, q);
  return qb;
}

/** How many jobs (matching the text filter) have each overview status, and in all. */
export async function statusCounts(
  db: Knex,
  q: string | undefined,
): Promise<Record<OverviewStatus | 'all', number>> {
  const rows = (await base(db, q)
    .select(db.raw(`${STATUS_SQL} AS st`))
    .count({ n: '*' })
    .groupBy('st')) as Array<{ st: string; n: number | string }>;
  const counts = Object.fromEntries([
    ['all', 0],
    ...OVERVIEW_CHIPS.map((c) => [c.key, 0]),
  ]) as Record<OverviewStatus | 'all', number>;
  for (const r of rows) {
    counts.all += Number(r.n);
    if (r.st !== 'all' && r.st in counts) counts[r.st as OverviewStatus] = Number(r.n);
  }
  return counts;
}

/**
 * One page of the overview and the total that matched. `category` keeps the
 * original order (category, then name); `failure` puts failing, timed-out
 * and lost jobs first, the most recent failure first, across categories;
 * `next` orders by the next occurrence, ended jobs last.
 */
export async function overviewPage(
  db: Knex,
  opts: OverviewQuery,
): Promise<{ jobs: JobWithCategory[]; total: number }> {
  const filtered = () => {
    const qb = base(db, opts.q);
    if (opts.status) qb.whereRaw(`${STATUS_SQL} = ?`, [opts.status]);
    return qb;
  };
  const ids = filtered().select('j.id');
  if (opts.sort === 'failure')
    ids
      .orderByRaw(`CASE WHEN ${STATUS_SQL} IN ${FAILING} THEN 0 ELSE 1 END`)
      .orderByRaw(`CASE WHEN ${STATUS_SQL} IN ${FAILING} THEN j.last_run_stop END DESC`)
      .orderBy([{ column: 'j.name' }, { column: 'j.id' }]);
  else if (opts.sort === 'next')
    ids
      .orderByRaw('j.next_run IS NULL')
      .orderBy([{ column: 'j.next_run' }, { column: 'j.name' }, { column: 'j.id' }]);
  else ids.orderBy([{ column: 'j.category_id' }, { column: 'j.name' }]);
  const [countRows, idRows] = await Promise.all([
    filtered().count<Array<{ n: number }>>({ n: '*' }),
    ids.limit(opts.perPage).offset(opts.page * opts.perPage) as Promise<Array<{ id: number }>>,
  ]);
  return { jobs: await jobsInOrder(db, idRows), total: Number(countRows[0]?.n ?? 0) };
}
