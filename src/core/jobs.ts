import { LATEST_OCCURRENCE_MS, legacySchedule, parseSchedule, type Schedule } from './schedule';

/** A row of the `jobs` table as mysql2 returns it (times are UTC Dates). */
export interface JobRow {
  id: number;
  name: string;
  category_id: number | null;
  interval: Date | null;
  next_run: Date | null;
  last_run_start: Date | null;
  last_run_stop: Date | null;
  last_run_status: string | null;
  current_status: string | null;
  routing_key: string | null;
  command: string | null;
  run_now: number | null;
  locked_by: string | null;
  schedule: string | null;
  timeout: number | null;
  description: string | null;
  ended_at: Date | null;
  schedule_error: string | null;
  /** The policy fields as the category file wrote them (JSON, without `enabled`); null = defaults. See core/policies/row.ts. */
  policies: string | null;
  /** Declared by the category file; 0 keeps the job from being claimed. */
  enabled: number;
  /** The runtime pause (pause/resume API), apart from `enabled`. */
  paused_at: Date | null;
  paused_by: string | null;
  /** overlap forbid: the run of the job not final yet. */
  active_run_id: string | null;
}

export interface CategoryRow {
  id: number;
  name: string;
}

/** The original stored the period as a DATETIME counted from 1970-01-01. */
export function intervalToSeconds(interval: Date | null): number | null {
  if (!interval) return null;
  return Math.round(interval.getTime() / 1000);
}

/**
 * null when the period does not fit the DATETIME column (a period of more
 * than ~8000 years would land past 9999-12-31 and fail the whole write).
 */
export function secondsToInterval(seconds: number): Date | null {
  const t = seconds * 1000;
  return t <= LATEST_OCCURRENCE_MS ? new Date(t) : null;
}

/**
 * The schedule text of a job: its own `schedule` column, or for a job
 * adopted from a Python cronq database (which kept only next_run and the
 * fixed interval) the equivalent `R/<next_run>/PT<n>S`.
 */
export function scheduleTextOf(
  job: Pick<JobRow, 'schedule' | 'interval' | 'next_run'>,
): string | null {
  if (job.schedule) return job.schedule;
  const seconds = intervalToSeconds(job.interval);
  if (seconds === null || seconds <= 0 || !job.next_run) return null;
  return legacySchedule(job.next_run, seconds);
}

/** Parse a job's schedule; throws ScheduleSyntaxError when it cannot be read. */
export function scheduleOf(
  job: Pick<JobRow, 'schedule' | 'interval' | 'next_run'>,
): Schedule | null {
  const text = scheduleTextOf(job);
  return text === null ? null : parseSchedule(text);
}
