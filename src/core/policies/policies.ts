import { DurationError, parsePolicyDuration } from './duration';

/**
 * A job's policies: what happens when a run overlaps another, when
 * occurrences are missed, when a run cannot start in time, and when it
 * fails. Every field is optional in a category file; the defaults are
 * the original cronq's behaviour, so a file without them runs as before.
 */
export interface JobPolicies {
  /**
   * allow: runs may overlap. forbid: an occurrence due while a run is not
   * final is recorded `skipped`. replace: a new occurrence kills the run
   * still going (recorded `killed`, "replaced by <run id>") and starts.
   */
  overlap: 'allow' | 'forbid' | 'replace';
  /**
   * Occurrences superseded while nothing could run them (an outage, a pause).
   * once: one run for the oldest, the rest counted in its `missed`.
   * skip: none of them runs; one `missed` run records how many.
   * all: each runs, oldest first, up to catchUpLimit; the rest are recorded `missed`.
   */
  catchUp: 'once' | 'skip' | 'all';
  catchUpLimit: number;
  /** A run not started within this long of its occurrence is recorded `missed` instead; null = no deadline. */
  startingDeadlineMs: number | null;
  retries: RetryPolicy | null;
  /** No successful run for this long makes the job overdue (docs/notifications.md); null = no alert. */
  alertAfterMs: number | null;
  /** Declared by the category file; false keeps the job from being claimed (apart from a runtime pause). */
  enabled: boolean;
}

export type RetryOn = 'failed' | 'timed_out' | 'lost';

export interface RetryPolicy {
  /** Retries after the first attempt (so max + 1 attempts at most). */
  max: number;
  delayMs: number;
  backoff: number;
  maxDelayMs: number;
  on: RetryOn[];
}

export const DEFAULT_POLICIES: Readonly<JobPolicies> = Object.freeze({
  overlap: 'allow',
  catchUp: 'once',
  catchUpLimit: 10,
  startingDeadlineMs: null,
  retries: null,
  alertAfterMs: null,
  enabled: true,
});

/** Bounds, so no file can ask for a million catch-up runs or a retry storm. */
export const MAX_CATCH_UP_LIMIT = 1000;
export const MAX_RETRIES = 100;
export const MAX_BACKOFF = 10;
const DEFAULT_RETRY = {
  delay: 'PT30S',
  backoff: 2,
  maxDelay: 'PT15M',
  on: ['failed', 'timed_out'],
};
const RETRY_ON: readonly RetryOn[] = ['failed', 'timed_out', 'lost'];

/** The category-file fields policies are read from, as written (snake_case). */
export const POLICY_FIELDS = [
  'overlap',
  'catch_up',
  'catch_up_limit',
  'starting_deadline',
  'retries',
  'alert_after',
  'enabled',
] as const;

/**
 * Read a job's policy fields. Returns the effective policies and a list of
 * errors, each naming the field; a job with any error is refused as a whole.
 */
export function parseJobPolicies(job: Record<string, unknown>): {
  policies: JobPolicies;
  errors: string[];
} {
  const errors: string[] = [];
  const p: JobPolicies = { ...DEFAULT_POLICIES };
  const has = (k: string) => job[k] !== undefined && job[k] !== null;

  if (has('overlap')) {
    if (job.overlap === 'allow' || job.overlap === 'forbid' || job.overlap === 'replace')
      p.overlap = job.overlap;
    else errors.push(`overlap must be "allow", "forbid" or "replace"`);
  }
  if (has('catch_up')) {
    if (job.catch_up === 'once' || job.catch_up === 'skip' || job.catch_up === 'all')
      p.catchUp = job.catch_up;
    else errors.push(`catch_up must be "once", "skip" or "all"`);
  }
  if (has('catch_up_limit')) {
    const n = job.catch_up_limit;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_CATCH_UP_LIMIT)
      p.catchUpLimit = n;
    else errors.push(`catch_up_limit must be a whole number from 1 to ${MAX_CATCH_UP_LIMIT}`);
  }
  if (has('starting_deadline')) {
    const ms = duration(job.starting_deadline, 'starting_deadline', errors);
    if (ms !== undefined) {
      if (ms < 1000) errors.push('starting_deadline must be at least one second (PT1S)');
      else p.startingDeadlineMs = ms;
    }
  }
  if (has('retries')) p.retries = parseRetries(job.retries, errors);
  if (has('alert_after')) {
    const ms = duration(job.alert_after, 'alert_after', errors);
    if (ms !== undefined) {
      if (ms < 1000) errors.push('alert_after must be at least one second (PT1S)');
      else p.alertAfterMs = ms;
    }
  }
  if (has('enabled')) {
    if (typeof job.enabled === 'boolean') p.enabled = job.enabled;
    else errors.push('enabled must be true or false');
  }
  return { policies: p, errors };
}

function parseRetries(raw: unknown, errors: string[]): RetryPolicy | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    errors.push('retries must be an object such as { "max": 3, "delay": "PT30S" }');
    return null;
  }
  const r = raw as Record<string, unknown>;
  const unknown = Object.keys(r).filter(
    (k) => !['max', 'delay', 'backoff', 'max_delay', 'on'].includes(k),
  );
  // One line for any number of them: a refused file's answer stays small.
  if (unknown.length > 0)
    errors.push(
      `retries has an unknown field "${unknown[0]!.slice(0, 40)}"${unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ''}`,
    );
  const before = errors.length;
  const max = r.max;
  if (!(typeof max === 'number' && Number.isInteger(max) && max >= 0 && max <= MAX_RETRIES))
    errors.push(`retries.max must be a whole number from 0 to ${MAX_RETRIES}`);
  const delayMs = duration(r.delay ?? DEFAULT_RETRY.delay, 'retries.delay', errors);
  const maxDelayMs = duration(r.max_delay ?? DEFAULT_RETRY.maxDelay, 'retries.max_delay', errors);
  const backoff = r.backoff ?? DEFAULT_RETRY.backoff;
  if (!(
    typeof backoff === 'number' &&
    Number.isFinite(backoff) &&
    backoff >= 1 &&
    backoff <= MAX_BACKOFF
  ))
    errors.push(`retries.backoff must be a number from 1 to ${MAX_BACKOFF}`);
  const on = r.on ?? DEFAULT_RETRY.on;
  if (
    !Array.isArray(on) ||
    on.length === 0 ||
    on.length > RETRY_ON.length ||
    !on.every((s) => (RETRY_ON as readonly unknown[]).includes(s))
  )
    errors.push(`retries.on must list one or more of ${RETRY_ON.map((s) => `"${s}"`).join(', ')}`);
  // Like starting_deadline: under a second, a failing job would retry in a tight loop.
  if (delayMs !== undefined && delayMs < 1000)
    errors.push('retries.delay must be at least one second (PT1S)');
  if (delayMs !== undefined && maxDelayMs !== undefined && maxDelayMs < delayMs)
    errors.push('retries.max_delay must not be shorter than retries.delay');
  if (errors.length > before) return null;
  return {
    max: max as number,
    delayMs: delayMs!,
    backoff: backoff as number,
    maxDelayMs: maxDelayMs!,
    on: [...new Set(on as RetryOn[])],
  };
}

function duration(v: unknown, field: string, errors: string[]): number | undefined {
  try {
    return parsePolicyDuration(v, field);
  } catch (err) {
    if (err instanceof DurationError) {
      errors.push(err.message);
      return undefined;
    }
    throw err;
  }
}
