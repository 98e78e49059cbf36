/**
 * The calendar CronQ schedules in: the instants a MariaDB/MySQL DATETIME(3)
 * column stores, 1000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z
 * (next_run, runs.scheduled_for). An occurrence outside it does not exist
 * for the engine: next() answers null once the next occurrence would lie
 * past the end (the schedule has ended, as an Rn/ schedule does after its
 * last occurrence), and nothing before the start is ever returned. The
 * engine clamps its arguments to this range first, so its arithmetic never
 * meets a date it cannot represent (years beyond 275760 are NaN in JS).
 */
export const EARLIEST_OCCURRENCE_MS = Date.UTC(1000, 0, 1);
export const LATEST_OCCURRENCE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** `after` moved into the calendar: occurrences strictly after the result are the ones to look at. */
export function clampAfter(after: number): number {
  return Math.min(LATEST_OCCURRENCE_MS, Math.max(EARLIEST_OCCURRENCE_MS - 1, after));
}

/** True when the instant can be stored (and so can be an occurrence). */
export function isStorable(t: number): boolean {
  return t >= EARLIEST_OCCURRENCE_MS && t <= LATEST_OCCURRENCE_MS;
}
