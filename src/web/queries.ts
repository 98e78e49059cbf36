import type { Knex } from '../core/db';
import type { CategoryRow, JobRow } from '../core/jobs';
import type { RunRow } from '../core/runs';

/**
 * Every read of the web admin. No N+1: a list of jobs costs one query for
 * the jobs (with their category joined) and one for all their recent runs
 * (a UNION ALL of per-job `ORDER BY queued_at DESC LIMIT n` branches, each
 * served by the (job_id, queued_at) index, so it reads n rows per job
 * however long the history is).
 */

export type JobWithCategory = JobRow & { category_name: string | null };

/** A run without its (possibly large) output, for lists. */
export type RunSummary = Omit<RunRow, 'output_tail'>;

const RUN_SUMMARY_COLUMNS = [
  'run_id',
  'job_id',
  'job_name',
  'scheduled_for',
  'triggered_by',
  'status',
  'routing_key',
  'claimed_by',
  'host',
  'queued_at',
  'published_at',
  'started_at',
  'finished_at',
  'heartbeat_at',
  'return_code',
  'run_time',
  'reason',
  'missed',
  'attempt',
  'first_run_id',
  'not_before',
  'killed_at',
  'killed_by',
];
export const RUN_SUMMARY_SQL = RUN_SUMMARY_COLUMNS.map((c) => `\`${c}\``).join(', ');

/**
 * The columns of a run in lists of many jobs: exactly those of the covering
 * index idx_runs_job_recent, so the query never touches the table rows.
 */
export type RunBrief = Pick<
  RunSummary,
  | 'run_id'
  | 'job_id'
  | 'queued_at'
  | 'status'
  | 'started_at'
  | 'finished_at'
  | 'return_code'
  | 'host'
  | 'triggered_by'
>;
const RUN_BRIEF_SQL = [
  'run_id',
  'job_id',
  'queued_at',
  'status',
  'started_at',
  'finished_at',
  'return_code',
  'host',
  'triggered_by',
]
  .map((c) => `\`${c}\``)
  .join(', ');

const JOB_COLUMNS = 'j.*, c.name AS category_name';

export interface JobListOptions {
  page: number;
  perPage: number;
  /** Free text matched against job name, category name and command. */
  q?: string;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function applyTextFilter(qb: Knex.QueryBuilder, q: string | undefined): void {
  const text = q?.trim();
  if (!text) return;
  const like = `%${escapeLike(text)}%`;
  qb.where((w) => {
    // Names compare exactly (binary collation); a person searching expects case not to matter.
    w.whereRaw('j.name COLLATE utf8mb4_unicode_ci LIKE ?', [like])
      .orWhereRaw('c.name COLLATE utf8mb4_unicode_ci LIKE ?', [like])
      .orWhere('j.command', 'like', like);
    if (/^\d+$/.test(text)) w.orWhere('j.id', Number(text));
  });
}

/**
 * The second half of a deferred join: pages are cut on ids alone (read from
 * the (category_id, name) or primary index, without the rows), then only
 * the page's rows are read, instead of reading every row an OFFSET skips.
 */
export async function jobsInOrder(
  db: Knex,
  idRows: Array<{ id: number }>,
): Promise<JobWithCategory[]> {
  if (idRows.length === 0) return [];
  const rows = (await db('jobs as j')
    .leftJoin('categories as c', 'c.id', 'j.category_id')
    .select(db.raw(JOB_COLUMNS))
    .whereIn(
      'j.id',
      idRows.map((r) => r.id),
    )) as JobWithCategory[];
  const byId = new Map(rows.map((r) => [r.id, r]));
  return idRows.map((r) => byId.get(r.id)).filter((r): r is JobWithCategory => r !== undefined);
}

export type JobSortField = 'id' | 'name' | 'category_id';

export interface ApiJobQuery {
  page: number;
  perPage: number;
  sort: { field: JobSortField; dir: 'asc' | 'desc' };
  ids?: number[];
  categoryIds?: number[];
  categoryNames?: string[];
  /** Exact job names (not split at commas: a name may hold one). */
  names?: string[];
}

/** GET /api/jobs: filtered, sorted, paginated. */
export async function apiJobs(db: Knex, q: ApiJobQuery): Promise<JobWithCategory[]> {
  const qb = db('jobs as j').select('j.id');
  if (q.categoryNames)
    qb.join('categories as c', 'c.id', 'j.category_id').whereIn('c.name', q.categoryNames);
  if (q.ids) qb.whereIn('j.id', q.ids);
  if (q.categoryIds) qb.whereIn('j.category_id', q.categoryIds);
  if (q.names) qb.whereIn('j.name', q.names);
  qb.orderBy(`j.${q.sort.field}`, q.sort.dir);
  if (q.sort.field !== 'id') qb.orderBy('j.id', q.sort.dir);
  return jobsInOrder(
    db,
    (await qb.limit(q.perPage).offset(q.page * q.perPage)) as Array<{ id: number }>,
  );
}

export async function jobById(db: Knex, id: number): Promise<JobWithCategory | undefined> {
  return (await db('jobs as j')
    .leftJoin('categories as c', 'c.id', 'j.category_id')
    .select(db.raw(JOB_COLUMNS))
    .where('j.id', id)
    .first()) as JobWithCategory | undefined;
}

/** The newest `perJob` runs of each job, newest first, in ONE query (index-only). */
export function recentRunsBrief(
  db: Knex,
  jobIds: readonly number[],
  perJob: number,
): Promise<Map<number, RunBrief[]>> {
  return newestRuns<RunBrief>(db, jobIds, perJob, RUN_BRIEF_SQL, true);
}

/**
 * Whether idx_runs_job_recent may be named in a hint. The optimizer, left to
 * itself, often picks the narrower (job_id, queued_at) index and then reads
 * every row from the table (4x slower on a cold history); a database whose
 * migration has not run yet lacks the index (error 1176), and is then
 * queried without the hint.
 */
let coveringIndexHint = true;
const ER_KEY_DOES_NOT_EXITS = 1176;

/** As recentRunsBrief with every column but the output (for one job's page). */
export function recentRuns(
  db: Knex,
  jobIds: readonly number[],
  perJob: number,
): Promise<Map<number, RunSummary[]>> {
  return newestRuns<RunSummary>(db, jobIds, perJob, RUN_SUMMARY_SQL);
}

async function newestRuns<T extends RunBrief>(
  db: Knex,
  jobIds: readonly number[],
  perJob: number,
  columns: string,
  covering = false,
): Promise<Map<number, T[]>> {
  const out = new Map<number, T[]>();
  const ids = [...new Set(jobIds)];
  for (const id of ids) out.set(id, []);
  if (ids.length === 0 || perJob <= 0) return out;
  const query = (hint: boolean) => {
    const from = hint ? 'runs FORCE INDEX (idx_runs_job_recent)' : 'runs';
    const branch = `(SELECT ${columns} FROM ${from} WHERE job_id = ? ORDER BY queued_at DESC LIMIT ${Math.floor(perJob)})`;
    return db.raw(ids.map(() => branch).join(' UNION ALL '), ids) as unknown as Promise<[T[]]>;
  };
  let rows: T[];
  try {
    [rows] = await query(covering && coveringIndexHint);
  } catch (err) {
    if (!(
      covering &&
      coveringIndexHint &&
      (err as { errno?: number }).errno === ER_KEY_DOES_NOT_EXITS
    ))
      throw err;
    coveringIndexHint = false;
    [rows] = await query(false);
  }
  for (const r of rows) out.get(r.job_id)?.push(r);
  for (const list of out.values())
    list.sort((a, b) => b.queued_at.getTime() - a.queued_at.getTime());
  return out;
}

/**
 * Characters of a run's output the web ever reads (the end of it): a run
 * page and a live refresh cost at most this much, whatever a runner stored
 * (CRONQ_OUTPUT_TAIL_BYTES goes up to 16 MiB).
 */
export const OUTPUT_SHOWN_CHARS = 65_536;

/** A run with at most the last OUTPUT_SHOWN_CHARS of its output, and whether more was cut. */
export type RunShown = RunSummary & {
  output_tail: string | null;
  output_cut: number;
  /** Bytes of the stored tail, and bytes the run wrote in all (null: not known). */
  output_bytes: number | null;
  output_total: number | null;
  /** The tail's stderr lines, from the end (core/output-lines.ts). */
  stderr_lines: string | null;
};

const RUN_SHOWN_SQL = `${RUN_SUMMARY_SQL}, RIGHT(output_tail, ${OUTPUT_SHOWN_CHARS}) AS output_tail, CHAR_LENGTH(output_tail) > ${OUTPUT_SHOWN_CHARS} AS output_cut, LENGTH(output_tail) AS output_bytes, output_total, stderr_lines`;

export async function runById(db: Knex, runId: string): Promise<RunShown | undefined> {
  return (await runsByIds(db, [runId]))[0];
}

/** Several runs in one query (ids de-duplicated by the caller or here), output cut as in runById. */
export async function runsByIds(db: Knex, runIds: readonly string[]): Promise<RunShown[]> {
  const ids = [...new Set(runIds)];
  if (ids.length === 0) return [];
  const [rows] = (await db.raw(
    `SELECT ${RUN_SHOWN_SQL} FROM runs WHERE run_id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  )) as [RunShown[]];
  return rows.map((r) => ({
    ...r,
    output_cut: Number(r.output_cut ?? 0),
    output_bytes: r.output_bytes === null ? null : Number(r.output_bytes),
    output_total: r.output_total === null ? null : Number(r.output_total),
  }));
}

export interface EventRow {
  id: number;
  job_id: number | null;
  datetime: Date | null;
  run_id: string | null;
  type: string | null;
  host: string | null;
  return_code: number | null;
}

/** Events listed for one run (a run has a handful; a bound all the same). */
export const EVENTS_PER_RUN = 1000;

export async function eventsOfRun(db: Knex, runId: string): Promise<EventRow[]> {
  return (await eventsOfRuns(db, [runId])).get(runId) ?? [];
}

/** The first EVENTS_PER_RUN events of each run, in ONE query (one connection, however many runs). */
export async function eventsOfRuns(
  db: Knex,
  runIds: readonly string[],
): Promise<Map<string, EventRow[]>> {
  const ids = [...new Set(runIds)];
  const out = new Map<string, EventRow[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const branch = `(SELECT id, job_id, datetime, run_id, type, host, return_code FROM events WHERE run_id = ? ORDER BY id ASC LIMIT ${EVENTS_PER_RUN})`;
  const [rows] = (await db.raw(ids.map(() => branch).join(' UNION ALL '), ids)) as [EventRow[]];
  for (const r of rows) if (r.run_id !== null) out.get(r.run_id)?.push(r);
  for (const list of out.values()) list.sort((a, b) => a.id - b.id);
  return out;
}

/** Every category's id and name, by name (the filter of /failures): no join, no count. */
export async function categoryNames(db: Knex): Promise<CategoryRow[]> {
  return (await db('categories').select('id', 'name').orderBy('name').limit(1000)) as CategoryRow[];
}

export async function categories(
  db: Knex,
  ids?: number[],
): Promise<Array<CategoryRow & { job_count: number }>> {
  const qb = db('categories as c')
    .leftJoin('jobs as j', 'j.category_id', 'c.id')
    .select('c.id', 'c.name')
    .count({ job_count: 'j.id' })
    .groupBy('c.id', 'c.name')
    .orderBy('c.name');
  if (ids) qb.whereIn('c.id', ids);
  const rows = (await qb) as Array<CategoryRow & { job_count: number | string }>;
  return rows.map((r) => ({ id: r.id, name: r.name, job_count: Number(r.job_count) }));
}

export async function categoryByName(db: Knex, name: string): Promise<CategoryRow | undefined> {
  return (await db('categories').select('id', 'name').where('name', name).first()) as
    CategoryRow | undefined;
}

export async function jobsOfCategory(db: Knex, categoryId: number): Promise<JobWithCategory[]> {
  return (await db('jobs as j')
    .leftJoin('categories as c', 'c.id', 'j.category_id')
    .select(db.raw(JOB_COLUMNS))
    .where('j.category_id', categoryId)
    .orderBy('j.name')) as JobWithCategory[];
}

/** Ask the injector to run the job now (it creates the manual run). False when there is no such job. */
export async function requestRunNow(db: Knex, jobId: number): Promise<boolean> {
  const n = await db('jobs').where('id', jobId).update({ run_now: 1 });
  return n > 0;
}

/** `SELECT 1`, for /_status. */
export async function ping(db: Knex): Promise<void> {
  await db.raw('SELECT 1');
}
