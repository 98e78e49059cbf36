import { UsageError } from '../../core/errors';
import { ApiError, type ApiClient } from './api-client';

/** A job as GET /api/jobs answers it (the fields the commands use). */
export interface ApiJob {
  id: number;
  name: string;
  category: { id: number; name: string } | null;
  schedule: string | null;
  next_run: string | null;
  status: string | null;
  enabled: boolean;
  paused_at: string | null;
  ended_at: string | null;
  schedule_error: string | null;
  [field: string]: unknown;
}

const MAX_REF_LENGTH = 600;
/** A name with more slashes than this is refused rather than tried at every split. */
const MAX_SLASHES = 16;
/** Jobs of one name across categories read at most (100 per page). */
const MAX_PAGES = 50;

/**
 * The splits of `category/name` at each slash: names may contain slashes,
 * so "a/b/c" is category "a" job "b/c" or category "a/b" job "c".
 */
export function refSplits(ref: string): Array<{ category: string; name: string }> {
  const out: Array<{ category: string; name: string }> = [];
  for (let i = ref.indexOf('/'); i >= 0; i = ref.indexOf('/', i + 1)) {
    const category = ref.slice(0, i);
    const name = ref.slice(i + 1);
    if (category !== '' && name !== '') out.push({ category, name });
  }
  return out;
}

/**
 * The job a command names: a number is its id, anything else is
 * `category/name` (exact). An unknown or ambiguous job is a UsageError (exit 2).
 */
export async function resolveJob(api: ApiClient, ref: string): Promise<ApiJob> {
  if (ref === '' || ref.length > MAX_REF_LENGTH)
    throw new UsageError(
      `JOB must be a job id or category/name of at most ${MAX_REF_LENGTH} characters`,
    );
  if (/^\d+$/.test(ref)) {
    if (ref.length > 10) throw new UsageError(`no job with id ${ref}`);
    try {
      return (await api.get<{ data: { job: ApiJob } }>(`api/jobs/${ref}`)).data.job;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404)
        throw new UsageError(`no job with id ${ref}`);
      throw err;
    }
  }
  const splits = refSplits(ref);
  if (splits.length === 0) throw new UsageError(`"${ref}" is neither a job id nor category/name`);
  if (splits.length > MAX_SLASHES)
    throw new UsageError(`"${ref.slice(0, 60)}…" has too many slashes`);
  const found: ApiJob[] = [];
  for (const s of splits)
    for (const job of await jobsNamed(api, s.name))
      if (job.category?.name === s.category) found.push(job);
  if (found.length === 0)
    throw new UsageError(`no job "${ref}" (give category/name or the job's id)`);
  if (found.length > 1)
    throw new UsageError(
      `"${ref}" names ${found.length} jobs (ids ${found.map((j) => j.id).join(', ')}): give the id`,
    );
  return found[0]!;
}

/** Every job of that exact name, in any category (GET /api/jobs?name=). */
async function jobsNamed(api: ApiClient, name: string): Promise<ApiJob[]> {
  const out: ApiJob[] = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const q = new URLSearchParams({ name, per_page: '100', page: String(page) });
    const jobs = (await api.get<{ data: { jobs: ApiJob[] } }>(`api/jobs?${q}`)).data.jobs;
    out.push(...jobs.filter((j) => j.name === name));
    if (jobs.length < 100) break;
  }
  return out;
}
