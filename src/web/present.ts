import { errorMessage } from '../core/async';
import { intervalToSeconds, scheduleOf, scheduleTextOf } from '../core/jobs';
import { isoUtc } from './format';
import type { JobWithCategory, RunBrief, RunSummary } from './queries';

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
}

export function runJson(r: RunBrief | RunSummary): ApiRun {
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
  }
  return out;
}

export function jobJson(
  j: JobWithCategory,
  runs: Array<RunBrief | RunSummary>,
): Record<string, unknown> {
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
    runs: runs.map(runJson),
  };
}

/** What a job "is" right now: its newest run's status, else the original's columns. */
export function jobStatus(
  j: Pick<JobWithCategory, 'current_status' | 'last_run_status'>,
  latest: RunBrief | undefined,
): string | null {
  if (latest) return latest.status;
  if (j.current_status?.trim() === 'running') return 'running';
  return j.last_run_status?.trim() || j.current_status?.trim() || null;
}

export interface ScheduleView {
  text: string | null;
  words: string;
  upcoming: Date[];
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
      error: j.schedule_error,
    };
  try {
    if (n <= 0)
      return {
        text,
        words: wordsOf(text, () => scheduleOf(j)!),
        upcoming: [],
        error: j.schedule_error,
      };
    const s = scheduleOf(j)!;
    return {
      text,
      words: wordsOf(text, () => s),
      upcoming: s.nextN(now, n),
      error: j.schedule_error,
    };
  } catch (err) {
    return { text, words: 'unreadable schedule', upcoming: [], error: errorMessage(err) };
  }
}
