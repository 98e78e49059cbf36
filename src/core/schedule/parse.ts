/**
 * Parsing a schedule's text: the zone setting (TZ=, CRON_TZ=), then the ISO
 * form (iso-parse.ts) or the cron form (cron-parse.ts). The syntax is
 * documented at the top of schedule.ts.
 */
import { ScheduleSyntaxError } from '../errors';
import { parseCronSchedule } from './cron-parse';
import { fail } from './fail';
import { parseIsoSchedule } from './iso-parse';
import type { Schedule } from './types';
import { namedZone, UTC, type TimeZone } from './zone';

const EXPECTED =
  'expected an ISO 8601 repeating interval such as R/2024-01-01T00:00:00Z/PT1H or a cron expression such as "0 3 * * *", optionally after TZ=<IANA zone>';

/** Parses a schedule; throws ScheduleSyntaxError saying what was expected. */
export function parseSchedule(text: string): Schedule {
  if (typeof text !== 'string') {
    throw new ScheduleSyntaxError(`a schedule must be a string, ${EXPECTED}`);
  }
  const trimmed = text.trim();
  if (trimmed === '') fail(trimmed, `the schedule is empty; ${EXPECTED}`);

  const { body, zone } = splitZone(trimmed);
  if (/^R\d*\//.test(body)) return parseIsoSchedule(trimmed, body, zone);
  if (body.startsWith('@') || /^\S+(\s+\S+){4,5}$/.test(body)) {
    return parseCronSchedule(trimmed, body, zone ?? UTC, zone !== null);
  }
  if (/^P/.test(body)) {
    fail(
      trimmed,
      `a duration alone has no start; write R/<start>/${body.split('/')[0]}, e.g. R/2024-01-01T00:00:00Z/${body.split('/')[0]}`,
    );
  }
  if (/^\S+(\s+\S+){1,3}$/.test(body) || /^\S+(\s+\S+){6,}$/.test(body)) {
    const n = body.split(/\s+/).length;
    fail(
      trimmed,
      `a cron expression has 5 fields "minute hour day-of-month month day-of-week" or 6 with a leading seconds field; got ${n}`,
    );
  }
  if (/^R/.test(body)) {
    fail(
      trimmed,
      `an ISO 8601 repeating interval starts with R/ or Rn/ (n >= 1), e.g. R/2024-01-01T00:00:00Z/PT1H`,
    );
  }
  fail(trimmed, EXPECTED);
}

const ZONE_PREFIX = /^(CRON_TZ|TZ)=(\S*)(?:\s+([\s\S]*))?$/;
const ZONE_SUFFIX = /^([\s\S]*?)\s+(CRON_TZ|TZ)=(\S*)$/;

/**
 * The zone setting of a schedule: `TZ=Zone <schedule>` (or `CRON_TZ=`), as
 * in Vixie cron and Kubernetes, or `<schedule> TZ=Zone` at the end, as
 * people also write it. One of them, not both.
 */
function splitZone(text: string): { body: string; zone: TimeZone | null } {
  const prefix = ZONE_PREFIX.exec(text);
  const suffix = prefix ? null : ZONE_SUFFIX.exec(text);
  if (!prefix && !suffix) return { body: text, zone: null };
  const [key, name, rest] = prefix
    ? [prefix[1]!, prefix[2] ?? '', prefix[3] ?? '']
    : [suffix![2]!, suffix![3] ?? '', suffix![1] ?? ''];
  const zone = namedZone(name);
  if (zone === null) {
    fail(
      text,
      `${key}=${name} is not a known time zone, expected an IANA zone such as ${key}=Europe/Berlin`,
    );
  }
  const body = rest.trim();
  if (body === '') fail(text, `${key}=${name} must be followed by a schedule; ${EXPECTED}`);
  if (/(^|\s)(CRON_TZ|TZ)=/.test(body)) {
    fail(text, 'the time zone is given twice; write TZ=<zone> once, before or after the schedule');
  }
  return { body, zone };
}
