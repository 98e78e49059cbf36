/**
 * When an ISO 8601 repeating interval runs (the parsing is in iso-parse.ts).
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
import type { Schedule } from './types';
import { addCalendar, checkDate } from './calendar';
import { describeIso } from './describe';
import {
  DAY_MS,
  HOUR_MS,
  instantToWall,
  MINUTE_MS,
  SECOND_MS,
  wallToInstant,
  type TimeZone,
} from './zone';
import { clampAfter, isStorable } from './range';

/** Gregorian averages (146097 days per 400 years), used only to estimate an index. */
export const AVERAGE_MONTH_MS = (146097 / 4800) * DAY_MS;
/** Beyond this an index estimate or a Date would lose precision. */
export const MAX_SPAN_MS = 8.64e15;

export interface Duration {
  readonly years: number;
  readonly months: number;
  readonly weeks: number;
  readonly days: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
}

/** The elapsed-time part of a duration (hours, minutes, seconds), in ms. */
export function exactMs(d: Duration): number {
  return d.hours * HOUR_MS + d.minutes * MINUTE_MS + d.seconds * SECOND_MS;
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

  last(): Date | null {
    return Number.isFinite(this.lastIndex) ? this.storable(this.lastIndex) : null;
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
    return describeIso({
      duration: this.duration,
      zoneName: this.zone.name,
      anchorWall: this.anchorWall,
      backward: this.backward,
      count: this.count,
      onlyWall:
        this.count === 1 ? instantToWall(this.zone, this.occurrence(this.firstIndex)) : undefined,
    });
  }
}

function clamp(i: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, i));
}
