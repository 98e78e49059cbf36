/**
 * When a cron expression runs (the parsing is in cron-parse.ts).
 *
 * croner finds the next matching *wall-clock* time; it is always run in
 * UTC, so it does pure calendar matching and the process's TZ never matters.
 * The zone is applied here, with the same rule as the ISO schedules
 * (zone.ts, wallToInstant): each matching wall time runs once, at the first
 * instant the zone's clock shows it or later. So a wall time in a
 * spring-forward gap runs at the end of the gap (several of them collapse
 * into that one run), and a repeated fall-back hour runs once, on its first
 * pass -- for every expression, including `*\/5 * * * *`. (croner's own
 * `timezone` option differs for such "interval" expressions: it runs them in
 * both passes of a repeated hour and skips times in a gap; it agrees for
 * fixed times.)
 */
import type { Cron, CronPattern } from 'croner';
import type { Schedule } from './types';
import { checkDate } from './calendar';
import { describeCron } from './describe';
import {
  DAY_MS,
  instantToWall,
  offsetChanges,
  repeatedWallEnd,
  wallToInstant,
  type TimeZone,
} from './zone';
import { clampAfter, LATEST_OCCURRENCE_MS } from './range';

/**
 * countBetween counts exactly over at most this span (11 years: every
 * matching day costs one search, and a zone's changes are found by sampling
 * once a day); a longer range is estimated from its last 11 years.
 */
const EXACT_COUNT_SPAN_MS = 4018 * DAY_MS;

export class CronSchedule implements Schedule {
  readonly kind = 'cron' as const;
  readonly fixedPeriodSeconds = null;
  readonly timeZone: string;
  private secondsOfDayCache: number[] | null = null;

  constructor(
    readonly text: string,
    /** The fields after macro expansion. */
    readonly fields: readonly string[],
    private readonly zone: TimeZone,
    private readonly zoneGiven: boolean,
    private readonly cron: Cron,
    private readonly pattern: CronPattern,
  ) {
    this.timeZone = zone.name;
  }

  /**
   * The first matching wall time strictly after wall `w`. croner knows the
   * years 1-9999 only and throws outside them; past its range there is no match.
   */
  private nextWall(w: number): number | null {
    try {
      const d = this.cron.nextRun(new Date(w));
      return d === null ? null : d.getTime();
    } catch {
      return null;
    }
  }

  /** The first occurrence after `after` within the storable calendar (range.ts), or null. */
  private nextInstant(after: number): number | null {
    if (after >= LATEST_OCCURRENCE_MS) return null;
    const t = this.nextInstantUnbounded(clampAfter(after));
    return t === null || t > LATEST_OCCURRENCE_MS ? null : t;
  }

  private nextInstantUnbounded(after: number): number | null {
    const fixed = this.zone.fixedOffsetMs;
    if (fixed !== null) {
      const w = this.nextWall(after + fixed);
      return w === null ? null : w - fixed;
    }
    let w = instantToWall(this.zone, after);
    // At most two rounds: the second only when `after` lies in the second
    // pass of a repeated hour, whose wall times have run on the first pass.
    for (;;) {
      const candidate = this.nextWall(w);
      if (candidate === null) return null;
      const instant = wallToInstant(this.zone, candidate);
      if (instant > after) return instant;
      // Jump past the repeated wall times; stepping to the candidate is the
      // (never needed) fallback that still guarantees progress.
      const end = repeatedWallEnd(this.zone, after);
      w = end !== null && end - 1 > w ? end - 1 : candidate;
    }
  }

  next(after: Date): Date | null {
    const t = this.nextInstant(checkDate(after, 'after'));
    return t === null ? null : new Date(t);
  }

  /** A cron expression never runs out, so no next occurrence means the calendar's end. */
  last(): Date | null {
    return null; // A cron expression repeats for ever.
  }

  endsInCalendar(after: Date): boolean {
    return this.next(after) === null;
  }

  nextN(after: Date, n: number): Date[] {
    const out: Date[] = [];
    let t: number | null = checkDate(after, 'after');
    while (out.length < n && (t = this.nextInstant(t)) !== null) out.push(new Date(t));
    return out;
  }

  /**
   * Counted in wall time: the matching wall times between the last wall
   * time that has run at `from` and the last that has run at `to`, less the
   * extra ones that a spring-forward gap collapses into a single run.
   */
  countBetween(from: Date, to: Date, cap = 1e9): number {
    const a = clampAfter(checkDate(from, 'from'));
    const b = clampAfter(checkDate(to, 'to'));
    if (!(b > a)) return 0;
    if (b - a > EXACT_COUNT_SPAN_MS) {
      // A decade and more of outage (or a next_run written far in the past):
      // the rate of the last 11 years, scaled. Bounded work beats exactness
      // here; the last years because `to` is now, where croner is fastest.
      const sample = this.countExactly(b - EXACT_COUNT_SPAN_MS, b, cap);
      if (sample >= cap) return cap;
      return Math.min(cap, Math.round((sample * (b - a)) / EXACT_COUNT_SPAN_MS));
    }
    return this.countExactly(a, b, cap);
  }

  private countExactly(a: number, b: number, cap: number): number {
    let collapsed = 0;
    for (const change of offsetChanges(this.zone, a, b)) {
      if (change.offsetAfter <= change.offsetBefore) continue;
      const gapStart = change.at + change.offsetBefore;
      const gapEnd = change.at + change.offsetAfter;
      const inGap = this.countWalls(gapStart - 1, gapEnd, Infinity);
      if (inGap > 1) collapsed += inGap - 1;
    }
    const walls = this.countWalls(this.lastWallRunBy(a), this.lastWallRunBy(b), cap + collapsed);
    return Math.max(0, Math.min(cap, walls - collapsed));
  }

  /** The largest wall time w with wallToInstant(w) <= t. */
  private lastWallRunBy(t: number): number {
    const end = repeatedWallEnd(this.zone, t);
    return end === null ? instantToWall(this.zone, t) : end - 1;
  }

  /** Matching wall times in (lo, hi], stopping once `limit` is reached. */
  private countWalls(lo: number, hi: number, limit: number): number {
    const times = this.secondsOfDay();
    let count = 0;
    let w = lo;
    while (count < limit) {
      const m = this.nextWall(w);
      if (m === null || m > hi) break;
      // Date fields and time fields match independently, so every time of
      // day the pattern allows matches on the day of m.
      const dayStart = Math.floor(m / DAY_MS) * DAY_MS;
      const dayLast = dayStart + DAY_MS - 1;
      const from = m - dayStart;
      const to = Math.min(hi, dayLast) - dayStart;
      count += upperBound(times, to) - upperBound(times, from - 1);
      w = dayLast;
    }
    return count;
  }

  /** The times of day (ms after midnight) the pattern allows, ascending. */
  private secondsOfDay(): number[] {
    if (this.secondsOfDayCache === null) {
      const { hour, minute, second } = this.pattern;
      const times: number[] = [];
      for (let h = 0; h < 24; h++) {
        if (!hour[h]) continue;
        for (let m = 0; m < 60; m++) {
          if (!minute[m]) continue;
          for (let s = 0; s < 60; s++) if (second[s]) times.push(((h * 60 + m) * 60 + s) * 1000);
        }
      }
      this.secondsOfDayCache = times;
    }
    return this.secondsOfDayCache;
  }

  describe(): string {
    return describeCron(this.fields, this.zone.name, this.zoneGiven);
  }
}

/** The number of elements <= x in an ascending array. */
function upperBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
