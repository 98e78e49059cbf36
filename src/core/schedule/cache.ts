import { parseSchedule } from './parse';
import type { Schedule } from './types';

/**
 * Parsed schedules by text, for everyone who parses the same texts again
 * and again (the injector's claims, the API's checks). A schedule is
 * immutable, and parsing a cron expression costs far more than computing its
 * next occurrence, so a claim of thousands of jobs parses each distinct text
 * once. Bounded: cleared when full (cheap, and jobs' texts rarely number in
 * the tens of thousands). A text that does not parse is not kept: it throws
 * each time.
 */
const CACHE_MAX = 20_000;
const cache = new Map<string, Schedule>();

/** parseSchedule(text), parsed once per distinct text. */
export function cachedSchedule(text: string): Schedule {
  let schedule = cache.get(text);
  if (schedule === undefined) {
    schedule = parseSchedule(text);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(text, schedule);
  }
  return schedule;
}
