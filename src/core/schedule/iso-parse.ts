/**
 * Parsing ISO 8601 repeating intervals: R[n]/<start>/<duration> and
 * R[n]/<duration>/<end>. The grammar and the rules are documented at the top
 * of schedule.ts; when they run is in iso-occurrences.ts.
 */
import { daysInMonth, utcWall } from './calendar';
import { fail } from './fail';
import {
  AVERAGE_MONTH_MS,
  exactMs,
  IsoSchedule,
  MAX_SPAN_MS,
  type Duration,
} from './iso-occurrences';
import {
  DAY_MS,
  fixedZone,
  formatOffset,
  instantToWall,
  MINUTE_MS,
  namedZone,
  wallToInstant,
  type TimeZone,
} from './zone';

const EXAMPLE_DATE_TIME = '2024-01-01T00:00:00Z';
const EXAMPLE_DURATION = 'PT1M, PT12H, P1D, P1W, P1M or P1Y2M3DT4H';

interface DateTimeText {
  /** The wall clock written, as ms (see zone.ts). */
  readonly wall: number;
  /** The offset written (Z = 0), or null when none was. */
  readonly offsetMs: number | null;
  /** The zone written in brackets, or null. */
  readonly zone: TimeZone | null;
}

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?(?:\[(!?)([^\]]*)\])?$/;

function parseDateTime(text: string, raw: string, role: 'start' | 'end'): DateTimeText {
  const m = DATE_TIME.exec(raw);
  if (!m) {
    const hint = /^\d{8}T/.test(raw) ? ' (the extended form with "-" and ":" is required)' : '';
    fail(text, `the ${role} must be an ISO 8601 date-time such as ${EXAMPLE_DATE_TIME}${hint}`);
  }
  const [, y, mo, d, h, mi, s, frac, offset, , zoneName] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = s === undefined ? 0 : Number(s);
  const bad = (what: string, value: string | undefined, range: string): never =>
    fail(text, `the ${role} ${raw} has ${what} ${value}, expected ${range}`);
  if (month < 1 || month > 12) bad('month', mo, '01-12');
  const monthDays = daysInMonth(year, month - 1);
  if (day < 1 || day > monthDays) bad('day', d, `01-${monthDays} for ${year}-${mo}`);
  if (hour > 23) bad('hour', h, '00-23');
  if (minute > 59) bad('minute', mi, '00-59');
  if (second > 59) bad('second', s, '00-59');
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  const wall = utcWall(year, month - 1, day, ((hour * 60 + minute) * 60 + second) * 1000 + ms);

  let offsetMs: number | null = null;
  if (offset === 'Z') offsetMs = 0;
  else if (offset !== undefined) {
    const digits = offset.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (oh > 18 || om > 59 || (oh === 18 && om > 0)) {
      fail(text, `the ${role} ${raw} has offset ${offset}, expected -18:00 to +18:00`);
    }
    offsetMs = (offset.startsWith('-') ? -1 : 1) * (oh * 60 + om) * MINUTE_MS;
  }

  let zone: TimeZone | null = null;
  if (zoneName !== undefined) {
    zone = namedZone(zoneName);
    if (zone === null) {
      fail(
        text,
        `the ${role} ${raw} names an unknown time zone [${zoneName}], expected an IANA zone such as [Europe/Berlin]`,
      );
    }
  }
  return { wall, offsetMs, zone };
}

const DURATION =
  /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

export function parseDuration(text: string, raw: string): Duration {
  if (/^P[\dYMWDTHS]*[.,]/.test(raw)) {
    fail(
      text,
      `the duration ${raw} has a fraction; durations are whole numbers of seconds or larger units, e.g. PT1M30S or P1DT12H`,
    );
  }
  const m = DURATION.exec(raw);
  if (!m || raw === 'P') {
    fail(text, `the duration must be an ISO 8601 duration such as ${EXAMPLE_DURATION}`);
  }
  const [years, months, weeks, days, hours, minutes, seconds] = m
    .slice(1)
    .map((v) => (v === undefined ? 0 : Number(v)));
  const duration: Duration = {
    years: years ?? 0,
    months: months ?? 0,
    weeks: weeks ?? 0,
    days: days ?? 0,
    hours: hours ?? 0,
    minutes: minutes ?? 0,
    seconds: seconds ?? 0,
  };
  const approxMs =
    (duration.years * 12 + duration.months) * AVERAGE_MONTH_MS +
    (duration.weeks * 7 + duration.days) * DAY_MS +
    exactMs(duration);
  if (approxMs === 0) fail(text, `the duration ${raw} is zero; it must be longer than zero`);
  if (!(approxMs < MAX_SPAN_MS)) fail(text, `the duration ${raw} is too long`);
  return duration;
}

/** Splits at '/', except inside brackets: a zone has slashes of its own ([Europe/Berlin]). */
function splitOutsideBrackets(body: string): string[] {
  const parts = [''];
  let depth = 0;
  for (const ch of body) {
    if (ch === '[') depth++;
    else if (ch === ']') depth = Math.max(0, depth - 1);
    if (ch === '/' && depth === 0) parts.push('');
    else parts[parts.length - 1] += ch;
  }
  return parts;
}

/** Parses the ISO form; `zoneFromPrefix` is the zone of a `TZ=` prefix, if any. */
export function parseIsoSchedule(
  text: string,
  body: string,
  zoneFromPrefix: TimeZone | null,
): IsoSchedule {
  const parts = splitOutsideBrackets(body);
  if (parts.length !== 3) {
    fail(
      text,
      `an ISO 8601 repeating interval has three parts, R[n]/<start>/<duration> or R[n]/<duration>/<end>, e.g. R/${EXAMPLE_DATE_TIME}/PT1H`,
    );
  }
  const [rep, first, second] = parts as [string, string, string];
  const rm = /^R(\d*)$/.exec(rep);
  if (!rm)
    fail(text, `the repetition must be R (unbounded) or Rn with n >= 1, e.g. R12; got ${rep}`);
  let count: number | null = null;
  if (rm[1] !== '') {
    count = Number(rm[1]);
    if (count === 0)
      fail(text, 'R0 never runs; the repetition must be R (unbounded) or Rn with n >= 1');
    if (!Number.isSafeInteger(count)) fail(text, `the repetition count ${rm[1]} is too large`);
  }

  const backward = first.startsWith('P');
  if (!backward && second !== '' && !second.startsWith('P') && DATE_TIME.test(second)) {
    fail(
      text,
      'R/<start>/<end> is not supported; give the interval as a duration, R/<start>/<duration>, e.g. R/2024-01-01T00:00:00Z/P1D',
    );
  }
  if (backward && second.startsWith('P')) {
    fail(
      text,
      'a repeating interval needs a date-time: R[n]/<start>/<duration> or R[n]/<duration>/<end>',
    );
  }
  const duration = parseDuration(text, backward ? first : second);
  const written = parseDateTime(text, backward ? second : first, backward ? 'end' : 'start');

  let zone: TimeZone;
  if (written.zone && zoneFromPrefix && written.zone.name !== zoneFromPrefix.name) {
    fail(
      text,
      `two time zones were given (TZ=${zoneFromPrefix.name} and [${written.zone.name}]); give one`,
    );
  }
  const named = written.zone ?? zoneFromPrefix;
  if (named) zone = named;
  else if (written.offsetMs !== null) zone = fixedZone(written.offsetMs);
  else zone = fixedZone(0);

  let anchor: number;
  let anchorWall: number;
  if (written.offsetMs === null) {
    // A wall-clock time in the zone; in a gap it runs at the first instant
    // after it, but later occurrences keep the wall time as written.
    anchorWall = written.wall;
    anchor = wallToInstant(zone, written.wall);
  } else {
    anchor = written.wall - written.offsetMs;
    anchorWall = instantToWall(zone, anchor);
    if (named && written.offsetMs !== 0 && anchorWall !== written.wall) {
      fail(
        text,
        `the ${backward ? 'end' : 'start'} offset ${formatOffset(written.offsetMs)} is not ${named.name}'s offset at that time (${formatOffset(zone.offsetMs(anchor))}); write Z, the zone's offset, or no offset`,
      );
    }
  }

  return new IsoSchedule(text, zone, anchor, anchorWall, duration, backward, count);
}
