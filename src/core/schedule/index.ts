/**
 * The schedule engine: pure functions, no I/O, no clock. CONTRACT (other
 * modules rely on exactly these exports; the implementation lives in the
 * files beside this one).
 *
 *   parseSchedule(text): Schedule            throws ScheduleSyntaxError
 *   cachedSchedule(text): Schedule           the same, parsed once per text (bounded cache)
 *   nextOccurrence(scheduleOrText, after): Date | null
 *       first occurrence strictly after `after`; null when a bounded
 *       schedule (Rn/...) has no occurrence left.
 *   Schedule.next(after), Schedule.nextN(after, n), Schedule.describe(),
 *   Schedule.fixedPeriodSeconds (for the original `interval` column)
 *   legacySchedule(nextRun, intervalSeconds): schedule text for a job of an
 *       adopted Python cronq database that has only next_run + interval.
 */
export * from './schedule';
