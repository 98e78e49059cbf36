import type { JobToRun } from '../core/messages';

/**
 * What a job's environment holds. Jobs run as the runner's user, and the
 * runner's environment carries the broker's password (RABBITMQ_URL) and
 * often the database's (DATABASE_URL): a job must not inherit them. So
 * every variable CronQ reads as a setting is removed, unless the operator
 * names it in CRONQ_JOB_ENV_PASS; everything else (PATH, HOME, TZ, ...)
 * passes as before. Each run then gets its own CRONQ_JOB_ID, CRONQ_JOB_NAME,
 * CRONQ_RUN_ID and CRONQ_SCHEDULED_FOR, which the allow-list cannot shadow.
 */

/** CronQ's settings outside the CRONQ_ / RABBITMQ_ prefixes (see src/core/config.ts). */
const SETTINGS = new Set(['DATABASE_URL', 'LOG_PATH', 'LOG_LEVEL', 'LISTEN_INTERFACE', 'PORT']);
const SETTING_PREFIXES = ['CRONQ_', 'RABBITMQ_'];

/** True for a variable that is one of CronQ's own settings (never passed unless allow-listed). */
export function isCronqSetting(name: string): boolean {
  return SETTINGS.has(name) || SETTING_PREFIXES.some((p) => name.startsWith(p));
}

/** CRONQ_JOB_ENV_PASS entries: a name, or a prefix ending in `*`. */
export function passes(name: string, allow: readonly string[]): boolean {
  return allow.some((a) => (a.endsWith('*') ? name.startsWith(a.slice(0, -1)) : name === a));
}

/** The environment every job starts from: the runner's, less CronQ's settings not allow-listed. */
export function jobBaseEnv(
  env: NodeJS.ProcessEnv,
  allow: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (isCronqSetting(k) && !passes(k, allow)) continue;
    out[k] = v;
  }
  return out;
}

/** Longest CRONQ_JOB_NAME given to a job, in UTF-16 units: names come from messages. */
export const MAX_ENV_NAME_CHARS = 1024;

/** An environment value from message data: no NUL (exec refuses it), bounded, no half surrogate pair at the cut. */
export function envValue(s: string, max = MAX_ENV_NAME_CHARS): string {
  let v = s.replace(/\0/g, '');
  if (v.length > max) {
    v = v.slice(0, max);
    if (/[\uD800-\uDBFF]$/.test(v)) v = v.slice(0, -1);
  }
  return v;
}

/**
 * The per-run variables. CRONQ_SCHEDULED_FOR is the message's scheduled_for
 * in ISO 8601 UTC: the occurrence for a scheduled run, the time it was asked
 * for for a manual one (the injector sets it so); `startedAt` when the
 * message has none that can be read.
 */
export function runEnv(job: JobToRun, startedAt: Date): Record<string, string> {
  const t = job.scheduledFor === null ? NaN : Date.parse(job.scheduledFor);
  const when = Number.isFinite(t) && Math.abs(t) <= 8.64e15 ? new Date(t) : startedAt;
  return {
    CRONQ_JOB_ID: String(job.jobId),
    CRONQ_JOB_NAME: envValue(job.name),
    CRONQ_RUN_ID: job.runId,
    CRONQ_SCHEDULED_FOR: when.toISOString(),
  };
}
