import { describePolicies, type JobPolicies } from '../core/policies';
import { policiesOfRow } from '../core/policies/row';

/**
 * A job's effective policies (defaults included) as the API and the job
 * page show them: values in the category file's own spelling, and words.
 */

export interface PoliciesJson {
  overlap: string;
  catch_up: string;
  catch_up_limit: number;
  starting_deadline: string | null;
  retries: {
    max: number;
    delay: string;
    backoff: number;
    max_delay: string;
    on: string[];
  } | null;
  alert_after: string | null;
  enabled: boolean;
  words: {
    overlap: string;
    catch_up: string;
    starting_deadline: string;
    retries: string;
    enabled: string;
  };
}

export type PolicyRow = { policies: string | null; enabled: number | boolean };

export function policiesJson(p: JobPolicies): PoliciesJson {
  const w = describePolicies(p);
  return {
    overlap: p.overlap,
    catch_up: p.catchUp,
    catch_up_limit: p.catchUpLimit,
    starting_deadline: p.startingDeadlineMs === null ? null : isoDuration(p.startingDeadlineMs),
    retries: p.retries && {
      max: p.retries.max,
      delay: isoDuration(p.retries.delayMs),
      backoff: p.retries.backoff,
      max_delay: isoDuration(p.retries.maxDelayMs),
      on: [...p.retries.on],
    },
    alert_after: p.alertAfterMs === null ? null : isoDuration(p.alertAfterMs),
    enabled: p.enabled,
    words: {
      overlap: w.overlap,
      catch_up: w.catchUp,
      starting_deadline: w.startingDeadline,
      retries: w.retries,
      enabled: w.enabled,
    },
  };
}

/** The most attempts a run of the job gets (1 + retries.max), or null without retries. */
export function attemptsOf(row: PolicyRow): number | null {
  const r = policiesOfRow(row).retries;
  return r ? r.max + 1 : null;
}

/** "2 of 3", or "2" when the job no longer says how many (its file changed). */
export function attemptText(attempt: number, attempts: number | null): string {
  return attempts !== null && attempts >= attempt ? `${attempt} of ${attempts}` : String(attempt);
}

/** Milliseconds as an ISO 8601 duration in days, hours, minutes and seconds ("PT1H30M", "P1D"). */
export function isoDuration(ms: number): string {
  let s = Math.max(0, ms) / 1000;
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s = Math.round((s - m * 60) * 1000) / 1000;
  const time = `${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s ? `${s}S` : ''}`;
  const out = `P${d ? `${d}D` : ''}${time ? `T${time}` : ''}`;
  return out === 'P' ? 'PT0S' : out;
}
