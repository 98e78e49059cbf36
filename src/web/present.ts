import { errorMessage } from '../core/async';
import { intervalToSeconds, scheduleOf, scheduleTextOf } from '../core/jobs';
import { isoUtc } from './format';
import type { JobWithCategory, RunBrief, RunSummary } from './queries';
import { policiesOfRow } from '../core/policies/row';
import { attemptText, attemptsOf, policiesJson, type PolicyRow } from './present-policies';
import { isQueuedRetry } from './run-queries';

/**
 * The JSON shapes of the API (SPEC.md: the original's field names, never
 * renamed; new fields only added) and the job status the pages show.
 */

export interface ApiRun {
  id: string;
  job_id: number;
  status: string;
  started_at: string | null;
  completed_at: string | null;
  return_code: number | null;
  host: string | null;
  triggered_by: string;
  queued_at: string | null;
  /** Only where the full run was read (one job's page, /api/live). */
  scheduled_for?: string | null;
  run_time?: number | null;
  reason?: string | null;
  /** 1 = the first run; a retry's is 2 or more (docs/policies.md). */
  attempt?: number;
  /** The most attempts the job's retries allow now (1 + retries.max); null without retries. */
  attempts?: number | null;
  first_run_id?: string | null;
  not_before?: string | null;
  /** When a kill was asked for, and who asked (`api from <addr>`, `admin from <addr>`, `overlap replace`). */
  killed_at?: string | null;
  killed_by?: string | null;
  missed?: number;
  job_name?: string | null;
}

export function runJson(r: RunBrief | RunSummary, attempts?: number | null): ApiRun {
  const out: ApiRun = {
    id: r.run_id,
    job_id: r.job_id,
    status: r.status,
    started_at: isoUtc(r.started_at),
    completed_at: isoUtc(r.finished_at),
    return_code: r.return_code,
    host: r.host,
    triggered_by: r.triggered_by,
    queued_at: isoUtc(r.queued_at),
  };
  if ('run_time' in r) {
    out.scheduled_for = isoUtc(r.scheduled_for);
    out.run_time = r.run_time;
    out.reason = r.reason;
    out.attempt = r.attempt;
    if (attempts !== undefined) out.attempts = attempts;
    out.first_run_id = r.first_run_id;
    out.not_before = isoUtc(r.not_before);
    out.killed_at = isoUtc(r.killed_at);
    out.killed_by = r.killed_by;
    out.missed = r.missed;
    out.job_name = r.job_name;
  }
  return out;
}

export function jobJson(
  j: JobWithCategory,
  runs: Array<RunBrief | RunSummary>,
  retryAttempts: ReadonlyMap<string, number> = new Map(),
): Record<string, unknown> {
  const attempts = attemptsOf(j);
  return {
    id: j.id,
    category_id: j.category_id,
    category: j.category_id === null ? null : { id: j.category_id, name: j.category_name },
    name: j.name,
    command: j.command,
    routing_key: j.routing_key,
    interval: intervalToSeconds(j.interval),
    next_run: isoUtc(j.next_run),
    last_run_start: isoUtc(j.last_run_start),
    last_run_stop: isoUtc(j.last_run_stop),
    last_run_status: j.last_run_status,
    current_status: j.current_status,
    locked_by: j.locked_by,
    schedule: scheduleTextOf(j),
    timeout: j.timeout,
    description: j.description,
    run_now: !!j.run_now,
    ended_at: isoUtc(j.ended_at),
    schedule_error: j.schedule_error,
    status: jobStatus(j, runs[0], retryAttempts.get(runs[0]?.run_id ?? '')),
    enabled: !!j.enabled,
    paused_at: isoUtc(j.paused_at),
    paused_by: j.paused_by,
    policies: policiesJson(policiesOfRow(j)),
    runs: runs.map((r) => runJson(r, attempts)),
  };
}

/**
 * What a job "is" right now: its newest run's status, else the original's
 * columns. A newest run that is a retry still queued (waiting for its
 * not_before, or for a runner) reads "retrying (2 of 3)": the run before it
 * in its chain failed, and another attempt is coming. `attempt` is that
 * retry's (queuedRetryAttempts reads it for lists).
 */
export function jobStatus(
  j: Pick<JobWithCategory, 'current_status' | 'last_run_status'> & PolicyRow,
  latest: Pick<RunBrief, 'status' | 'triggered_by'> | undefined,
  attempt?: number,
): string | null {
  if (latest && isQueuedRetry(latest))
    return attempt === undefined ? 'retrying' : `retrying (${attemptText(attempt, attemptsOf(j))})`;
  if (latest) return latest.status;
  if (j.current_status?.trim() === 'running') return 'running';
  return j.last_run_status?.trim() || j.current_status?.trim() || null;
}

export interface ScheduleView {
  text: string | null;
  words: string;
  upcoming: Date[];
  /** The last occurrence of a schedule that ends (Rn/...); null otherwise or when not asked (n = 0). */
  last: Date | null;
  error: string | null;
}

/**
 * Schedule text -> words. Parsing and describing is pure but not free,
 * and a page of 100 jobs mostly repeats a few schedules.
 */
const wordsCache = new Map<string, string>();
const WORDS_CACHE_MAX = 5000;

function wordsOf(text: string, parse: () => { describe(): string }): string {
  let words = wordsCache.get(text);
  if (words === undefined) {
    words = parse().describe();
    if (wordsCache.size >= WORDS_CACHE_MAX) wordsCache.delete(wordsCache.keys().next().value!);
    wordsCache.set(text, words);
  }
  return words;
}

/** The schedule in words and its next `n` occurrences after `now`; a schedule that cannot be read says why. */
export function scheduleView(
  j: Pick<JobWithCategory, 'schedule' | 'interval' | 'next_run' | 'schedule_error'>,
  now: Date,
  n: number,
): ScheduleView {
  const text = scheduleTextOf(j);
  if (text === null)
    return {
      text: null,
      words: 'no schedule (runs only when asked)',
      upcoming: [],
      last: null,
      error: j.schedule_error,
    };
  try {
    if (n <= 0)
      return {
        text,
        words: wordsOf(text, () => scheduleOf(j)!),
        upcoming: [],
        last: null,
        error: j.schedule_error,
      };
    const s = scheduleOf(j)!;
    return {
      text,
      words: wordsOf(text, () => s),
      upcoming: s.nextN(now, n),
      last: s.last(),
      error: j.schedule_error,
    };
  } catch (err) {
    return {
      text,
      words: 'unreadable schedule',
      upcoming: [],
      last: null,
      error: errorMessage(err),
    };
  }
}
