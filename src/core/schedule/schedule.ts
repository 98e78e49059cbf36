/**
 * Schedules: what a job's schedule text means, and when it next runs.
 *
 * SYNTAX
 *   ISO 8601 repeating intervals (the original cronq's form):
 *     R/<start>/<duration>     unbounded, from the start on
 *     Rn/<start>/<duration>    n occurrences in total (k = 0 .. n-1); then it ends
 *     R/<duration>/<end>       the intervals that end at <end>: occurrences at
 *     Rn/<duration>/<end>        end - duration, end - 2*duration, ... (n of them
 *                                when bounded); <end> itself is not an occurrence,
 *                                just as start + n*duration is not one of Rn/<start>/...
 *   <start>/<end>: 2024-01-01, 2024-01-01T03:00, 2024-01-01T03:00:00[.sss], then
 *     Z or an offset (+02:00, +0200, +02), or nothing = UTC. A zone may follow
 *     in brackets (RFC 9557): R/2024-03-01T02:30:00[Europe/Berlin]/P1D.
 *   <duration>: PnYnMnWnDTnHnMnS, whole numbers, not zero (P1M2DT3H, PT90S, P2W).
 *   Cron: 5 fields "minute hour day-of-month month day-of-week", or 6 with a
 *     leading seconds field; @yearly @monthly @weekly @daily @hourly (croner's
 *     field syntax: lists, ranges, steps, names, L, W, #).
 *   A zone for either form: `TZ=Europe/Berlin` (or `CRON_TZ=`) before the
 *     schedule, as in Vixie cron and Kubernetes (`TZ=Europe/Berlin 0 3 * * *`,
 *     `TZ=Europe/Berlin R/2024-03-01T02:30:00/P1D`), or after it
 *     (`0 3 * * * TZ=Europe/Berlin`); one of the two, not both.
 *     Bracket and TZ= may both appear only if they name the same zone.
 *
 * CALENDAR
 *   Occurrences exist from 1000-01-01 to 9999-12-31T23:59:59.999Z, what a
 *   DATETIME column stores (range.ts). A schedule whose next occurrence
 *   would lie later has ended, like an Rn/ schedule after its last one;
 *   checkSchedule refuses a schedule whose next occurrence after now does.
 *
 * ZONES
 *   Without a zone everything is UTC; a start written with an offset and no
 *   zone uses that fixed offset for calendar arithmetic. With a zone, times
 *   are wall-clock times there: a start without an offset is local time; with
 *   Z it is that instant (its local time is what repeats); with a numeric
 *   offset the offset must be the zone's at that time (which picks one pass of
 *   a repeated hour).
 *
 * ARITHMETIC
 *   Occurrence k is computed from the start, never by stepping from the
 *   previous one: start + k*(years, months) on the calendar, with the day of
 *   month clamped to the month's length (Jan 31 + P1M: Feb 29 2024, Mar 31,
 *   Apr 30; P1Y from Feb 29: Feb 28, then Feb 29 in leap years), then
 *   + k*(weeks, days) on the calendar, then + k*(hours, minutes, seconds) of
 *   elapsed time. Calendar units keep the wall-clock time in the zone; PT
 *   units are exact elapsed time (PT24H is not P1D across a DST change).
 *
 * DAYLIGHT SAVING (one rule for ISO and cron, in zone.ts): each wall-clock
 * occurrence runs once, at the first instant the zone's clock shows that time
 * or later. Hence:
 *   - a time in a skipped hour (spring forward) runs once, at the first valid
 *     instant after the gap: 02:30 Europe/Berlin on 2024-03-31 runs at 03:00
 *     CEST, and the next day at 02:30 again;
 *   - a time in a repeated hour (fall back) runs once, on its first pass;
 *     for cron this holds for every expression (`*\/5 * * * *` does not run
 *     again in the second pass of the hour). For elapsed-time cadence use a
 *     PT duration or UTC.
 *
 * next(after) is exact and constant-time for fixed periods (the index is
 * computed arithmetically), and for calendar durations an arithmetic estimate
 * corrected by a few steps; a ten-year outage costs nothing.
 */
import { ScheduleError, ScheduleRangeError, ScheduleSyntaxError } from '../errors';
import { cachedSchedule } from './cache';
import type { Schedule } from './types';
import { LATEST_OCCURRENCE_MS } from './range';

export type { Schedule } from './types';
export { EARLIEST_OCCURRENCE_MS, LATEST_OCCURRENCE_MS } from './range';
export { parseSchedule } from './parse';
export { cachedSchedule } from './cache';

/** The first occurrence strictly after `after`, or null when a bounded schedule has ended. */
export function nextOccurrence(schedule: Schedule | string, after: Date): Date | null {
  return (typeof schedule === 'string' ? cachedSchedule(schedule) : schedule).next(after);
}

/**
 * The schedule text for a job adopted from the Python cronq, which stored
 * only next_run and an interval in seconds: R/<next_run>/PT<n>S, so the job
 * keeps its phase and period.
 */
export function legacySchedule(nextRun: Date, intervalSeconds: number): string {
  const t = nextRun instanceof Date ? nextRun.getTime() : NaN;
  if (Number.isNaN(t))
    throw new ScheduleSyntaxError('legacy schedule: next_run must be a valid date');
  if (!Number.isSafeInteger(intervalSeconds) || intervalSeconds <= 0) {
    throw new ScheduleSyntaxError(
      `legacy schedule: the interval must be a whole number of seconds >= 1, got ${intervalSeconds}`,
    );
  }
  const iso = nextRun.toISOString().replace('.000Z', 'Z');
  return `R/${iso}/PT${intervalSeconds}S`;
}

/**
 * Parse a schedule and check that it can be stored now: its next occurrence
 * after `now` must lie within the calendar a DATETIME column holds (up to
 * 9999-12-31T23:59:59.999Z). A schedule that has simply ended (Rn/ in the
 * past) is accepted, as before. The one check behind cronq-validator, the
 * dry run and PUT /api/category. Throws ScheduleSyntaxError or ScheduleRangeError.
 */
export function checkSchedule(text: string, now: Date = new Date()): Schedule {
  const schedule = cachedSchedule(text);
  if (schedule.endsInCalendar(now)) {
    throw new ScheduleRangeError(
      `schedule ${JSON.stringify(schedule.text)}: its next occurrence after ${now.toISOString()} lies past ${new Date(LATEST_OCCURRENCE_MS).toISOString()}, the last time the database can store; choose a start or a duration that falls before the year 10000`,
    );
  }
  return schedule;
}

/**
 * null when the text is a schedule that can be stored now (checkSchedule),
 * else the error message (for the category validator).
 */
export function isValidSchedule(text: string, now: Date = new Date()): string | null {
  try {
    checkSchedule(text, now);
    return null;
  } catch (err) {
    if (err instanceof ScheduleError) return err.message;
    throw err;
  }
}
