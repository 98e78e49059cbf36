/**
 * ISO 8601 repeating intervals: R[n]/<start>/<duration> and R[n]/<duration>/<end>.
 * The grammar and the rules are documented at the top of schedule.ts.
 *
 * Occurrences are indexed by an integer i, and occurrence(i) is always
 * computed from the anchor (the start, or the end), never by stepping from
 * the previous occurrence:
 *
 *   occurrence(i) = wallToInstant(anchorWall + i*months + i*days) + i*exactMs
 *
 * where months/days are calendar arithmetic on the wall clock of the zone
 * (the day of month is clamped to the month's length, so the 31st becomes the
 * 30th or the 29th and comes back), and exactMs is the elapsed-time part
 * (hours, minutes, seconds). occurrence(0) is the anchor instant itself.
 * Forward schedules use i = 0, 1, ... (n-1 when bounded); backward schedules
 * (R/<duration>/<end>) use i = -1, -2, ... (-n when bounded), so every
 * occurrence is the start of one of the intervals that end at <end>.
 */
import { ScheduleSyntaxError } from '../errors';
import type { Schedule } from './types';
import { clockTime, dateTime, every, joinWords, MONTHS, quantity, WEEKDAYS } from './describe';
import {
  DAY_MS,
  formatOffset,
  HOUR_MS,
  instantToWall,
  MINUTE_MS,
  namedZone,
  SECOND_MS,
  wallToInstant,
  type TimeZone,
  fixedZone,
} from './zone';
import { clampAfter, isStorable } from './range';

/** Gregorian averages (146097 days per 400 years), used only to estimate an index. */
const AVERAGE_MONTH_MS = (146097 / 4800) * DAY_MS;
/** Beyond this an index estimate or a Date would lose precision. */
const MAX_SPAN_MS = 8.64e15;
const EXAMPLE_DATE_TIME = '2024-01-01T00:00:00Z';
const EXAMPLE_DURATION = 'PT1M, PT12H, P1D, P1W, P1M or P1Y2M3DT4H';

export interface Duration {
  readonly years: number;
  readonly months: number;
  readonly weeks: number;
  readonly days: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
}

interface DateTimeText {
  /** The wall clock written, as ms (see zone.ts). */
  readonly wall: number;
  /** The offset written (Z = 0), or null when none was. */
  readonly offsetMs: number | null;
  /** The zone written in brackets, or null. */
  readonly zone: TimeZone | null;
}

function fail(text: string, message: string): never {
  throw new ScheduleSyntaxError(`schedule ${JSON.stringify(text)}: ${message}`);
}

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?(?:\[(!?)([^\]]*)\])?$/;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month0: number): number {
  return month0 === 1 && isLeapYear(year) ? 29 : (MONTH_DAYS[month0] as number);
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Date.UTC without its mapping of years 0-99 to 1900-1999. */
function utcWall(year: number, month0: number, day: number, ms = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month0, day);
  return d.getTime() + ms;
}

/**
 * Calendar arithmetic on a wall time: add months (clamping the day to the
 * target month's length), then days; the time of day is kept.
 */
export function addCalendar(wall: number, months: number, days: number): number {
  const d = new Date(wall);
  const timeOfDay = wall - utcWall(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const monthIndex = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const year = Math.floor(monthIndex / 12);
  const month0 = monthIndex - year * 12;
  const day = Math.min(d.getUTCDate(), daysInMonth(year, month0));
  return utcWall(year, month0, day + days, timeOfDay);
}

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

function exactMs(d: Duration): number {
  return d.hours * HOUR_MS + d.minutes * MINUTE_MS + d.seconds * SECOND_MS;
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

export class IsoSchedule implements Schedule {
  readonly kind = 'iso' as const;
  readonly timeZone: string;
  readonly fixedPeriodSeconds: number | null;
  /** Calendar part of the duration. */
  private readonly months: number;
  private readonly days: number;
  /** Elapsed-time part of the duration. */
  private readonly exactMs: number;
  /** Milliseconds between occurrences when constant, else null. */
  private readonly periodMs: number | null;
  private readonly averageMs: number;
  /** Smallest and largest occurrence index (may be infinite). */
  private readonly firstIndex: number;
  private readonly lastIndex: number;

  constructor(
    readonly text: string,
    private readonly zone: TimeZone,
    /** The start (forward) or end (backward) instant. */
    private readonly anchor: number,
    private readonly anchorWall: number,
    readonly duration: Duration,
    private readonly backward: boolean,
    /** n of Rn, or null for unbounded. */
    readonly count: number | null,
  ) {
    this.timeZone = zone.name;
    this.months = duration.years * 12 + duration.months;
    this.days = duration.weeks * 7 + duration.days;
    this.exactMs = exactMs(duration);
    const calendarIsExact = this.months === 0 && (this.days === 0 || zone.fixedOffsetMs !== null);
    this.periodMs = calendarIsExact ? this.days * DAY_MS + this.exactMs : null;
    this.fixedPeriodSeconds = this.periodMs === null ? null : this.periodMs / SECOND_MS;
    this.averageMs = this.months * AVERAGE_MONTH_MS + this.days * DAY_MS + this.exactMs;
    if (backward) {
      this.firstIndex = count === null ? -Infinity : -count;
      this.lastIndex = -1;
    } else {
      this.firstIndex = 0;
      this.lastIndex = count === null ? Infinity : count - 1;
    }
  }

  /** The instant of occurrence i (ms), whether or not i is within the schedule's bounds. */
  occurrence(i: number): number {
    if (i === 0) return this.anchor;
    if (this.periodMs !== null) return this.anchor + i * this.periodMs;
    const wall = addCalendar(this.anchorWall, i * this.months, i * this.days);
    return wallToInstant(this.zone, wall) + i * this.exactMs;
  }

  /**
   * occurrence(i), with an index too far out for a JS Date (NaN) taken as
   * beyond every instant in its direction, so the searches below terminate.
   */
  private occurrenceOrBeyond(i: number): number {
    const t = this.occurrence(i);
    return Number.isNaN(t) ? (i > 0 ? Infinity : -Infinity) : t;
  }

  /** The smallest index whose occurrence is after t, or lastIndex + 1 when there is none. */
  private indexAfter(t: number): number {
    const span = t - this.anchor;
    if (!(Math.abs(span) < MAX_SPAN_MS)) {
      return span > 0 ? this.lastIndex + 1 : this.firstIndex;
    }
    if (this.periodMs !== null) {
      return clamp(Math.floor(span / this.periodMs) + 1, this.firstIndex, this.lastIndex + 1);
    }
    // The estimate is off by at most a few steps (month lengths, DST), so
    // correct it by stepping; each step is one occurrence computed from the anchor.
    let i = clamp(Math.floor(span / this.averageMs) + 1, this.firstIndex, this.lastIndex + 1);
    while (i > this.firstIndex && this.occurrenceOrBeyond(i - 1) > t) i--;
    while (i <= this.lastIndex && !(this.occurrenceOrBeyond(i) > t)) i++;
    return i;
  }

  /** Occurrence i as a Date, or null when it lies outside the storable calendar (range.ts). */
  private storable(i: number): Date | null {
    if (i > this.lastIndex) return null;
    const t = this.occurrence(i);
    return isStorable(t) ? new Date(t) : null;
  }

  next(after: Date): Date | null {
    return this.storable(this.indexAfter(clampAfter(checkDate(after, 'after'))));
  }

  endsInCalendar(after: Date): boolean {
    const i = this.indexAfter(clampAfter(checkDate(after, 'after')));
    return i <= this.lastIndex && !isStorable(this.occurrence(i));
  }

  nextN(after: Date, n: number): Date[] {
    const out: Date[] = [];
    let i = this.indexAfter(clampAfter(checkDate(after, 'after')));
    for (; out.length < n; i++) {
      const d = this.storable(i);
      if (d === null) break;
      out.push(d);
    }
    return out;
  }

  countBetween(from: Date, to: Date, cap = 1e9): number {
    const a = clampAfter(checkDate(from, 'from'));
    const b = clampAfter(checkDate(to, 'to'));
    if (!(b > a)) return 0;
    return Math.max(0, Math.min(cap, this.indexAfter(b) - this.indexAfter(a)));
  }

  describe(): string {
    const d = this.duration;
    const units: Array<[number, string]> = [
      [d.years, 'year'],
      [d.months, 'month'],
      [d.weeks, 'week'],
      [d.days, 'day'],
      [d.hours, 'hour'],
      [d.minutes, 'minute'],
      [d.seconds, 'second'],
    ];
    const present = units.filter(([n]) => n > 0);
    const zoneName = this.zone.name;
    const at = `at ${clockTime(this.anchorWall)} ${zoneName}`;
    const anchorText = `${dateTime(this.anchorWall)} ${zoneName}`;
    const wallDate = new Date(this.anchorWall);
    let phrase: string;
    let saysWhen = true;
    if (present.length === 1) {
      const [n, unit] = present[0] as [number, string];
      phrase = every(n, unit);
      if (unit === 'day') phrase += ` ${at}`;
      else if (unit === 'week') phrase += ` on ${WEEKDAYS[wallDate.getUTCDay()]} ${at}`;
      else if (unit === 'month') phrase += ` on day ${wallDate.getUTCDate()} ${at}`;
      else if (unit === 'year') {
        phrase += ` on ${wallDate.getUTCDate()} ${MONTHS[wallDate.getUTCMonth()]} ${at}`;
      } else saysWhen = false;
    } else {
      phrase = `every ${joinWords(present.map(([n, unit]) => quantity(n, unit)))}`;
      saysWhen = false;
    }
    if (this.count === 1) {
      const only = instantToWall(this.zone, this.occurrence(this.firstIndex));
      return `once at ${dateTime(only)} ${zoneName}`;
    }
    const direction = this.backward ? 'until' : 'from';
    if (this.count !== null) return `${phrase}, ${this.count} times ${direction} ${anchorText}`;
    if (this.backward) return `${phrase} until ${anchorText}`;
    const phaseless = saysWhen || (this.months === 0 && this.days === 0);
    return phaseless ? phrase : `${phrase} from ${anchorText}`;
  }
}

function clamp(i: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, i));
}

export function checkDate(d: Date, name: string): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(t)) throw new TypeError(`${name} must be a valid Date`);
  return t;
}
