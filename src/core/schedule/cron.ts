/**
 * Cron expressions: 5 fields (minute hour day-of-month month day-of-week) or 6
 * with a leading seconds field, plus the @hourly/@daily/... macros; the zone
 * comes from a `TZ=`/`CRON_TZ=` prefix (see schedule.ts), else UTC.
 *
 * croner parses the fields and finds the next matching *wall-clock* time; it
 * is always run in UTC, so it does pure calendar matching and the process's
 * TZ never matters. The zone is applied here, with the same rule as the ISO
 * schedules (zone.ts, wallToInstant): each matching wall time runs once, at
 * the first instant the zone's clock shows it or later. So a wall time in a
 * spring-forward gap runs at the end of the gap (several of them collapse into
 * that one run), and a repeated fall-back hour runs once, on its first pass --
 * for every expression, including `*\/5 * * * *`. (croner's own `timezone`
 * option differs for such "interval" expressions: it runs them in both passes
 * of a repeated hour and skips times in a gap; it agrees for fixed times.)
 */
import { Cron, CronPattern } from 'croner';
import { ScheduleSyntaxError } from '../errors';
import type { Schedule } from './types';
import { checkDate } from './iso';
import { clockTimeOf, every, joinWords, MONTHS, WEEKDAYS } from './describe';
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

const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const SECOND: FieldSpec = { name: 'second', min: 0, max: 59 };
const FIVE_FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS.map((m) => m.slice(0, 3).toUpperCase()) },
  { name: 'day-of-week', min: 0, max: 7, names: WEEKDAYS.map((d) => d.slice(0, 3).toUpperCase()) },
];

const EXPECTED =
  'a cron expression has 5 fields "minute hour day-of-month month day-of-week" (e.g. "0 3 * * *") or 6 with a leading seconds field, or is one of @yearly, @monthly, @weekly, @daily, @hourly';

function fail(text: string, message: string): never {
  throw new ScheduleSyntaxError(`schedule ${JSON.stringify(text)}: ${message}`);
}

/** Range checks on plain numbers, so the message names the field; croner checks the rest. */
function checkField(text: string, raw: string, spec: FieldSpec): void {
  for (const item of raw.split(',')) {
    const [base = '', step] = item.split('/');
    if (step !== undefined && !/^\d+$/.test(step)) {
      fail(text, `the ${spec.name} field "${raw}" has step "${step}", expected a whole number`);
    }
    if (step !== undefined && Number(step) === 0) {
      fail(text, `the ${spec.name} field "${raw}" has step 0, expected 1 or more`);
    }
    for (const value of base.split('-')) {
      if (!/^\d+$/.test(value)) continue;
      const n = Number(value);
      if (n < spec.min || n > spec.max) {
        fail(text, `the ${spec.name} field "${raw}" has ${n}, expected ${spec.min}-${spec.max}`);
      }
    }
  }
}

export function parseCronSchedule(
  text: string,
  body: string,
  zone: TimeZone,
  zoneGiven: boolean,
): CronSchedule {
  let expression = body.trim().replace(/\s+/g, ' ');
  if (expression.startsWith('@')) {
    const macro = MACROS[expression.toLowerCase()];
    if (macro === undefined) {
      const what =
        expression.toLowerCase() === '@reboot'
          ? '@reboot has no meaning for CronQ'
          : `unknown macro ${expression}`;
      fail(text, `${what}; ${EXPECTED}`);
    }
    expression = macro;
  }
  const fields = expression.split(' ');
  if (fields.length !== 5 && fields.length !== 6) {
    fail(text, `${EXPECTED}; got ${fields.length} field${fields.length === 1 ? '' : 's'}`);
  }
  const specs = fields.length === 6 ? [SECOND, ...FIVE_FIELDS] : FIVE_FIELDS;
  fields.forEach((f, i) => checkField(text, f, specs[i] as FieldSpec));

  let cron: Cron;
  let pattern: CronPattern;
  try {
    const options = { mode: '5-or-6-parts' as const };
    pattern = new CronPattern(expression, 'UTC', options);
    cron = new Cron(expression, { ...options, timezone: 'UTC', paused: true });
  } catch (err) {
    const detail = err instanceof Error ? err.message.replace(/^CronPattern: /, '') : String(err);
    fail(text, `${detail}; ${EXPECTED}`);
  }
  if (cron.nextRun(new Date(Date.UTC(2000, 0, 1))) === null) {
    fail(
      text,
      'the cron expression never matches a date (e.g. 30 February); check the day-of-month and month fields',
    );
  }
  return new CronSchedule(text, fields, zone, zoneGiven, cron, pattern);
}

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

type SimpleField =
  { kind: 'any' } | { kind: 'step'; step: number } | { kind: 'values'; values: number[] };

/** '*', '*\/n', or a list of numbers/names/ranges; null for anything richer (L, W, #, stepped ranges). */
function simpleField(raw: string, spec: FieldSpec): SimpleField | null {
  if (raw === '*' || raw === '?') return { kind: 'any' };
  const step = /^\*\/(\d+)$/.exec(raw);
  if (step) return { kind: 'step', step: Number(step[1]) };
  const values: number[] = [];
  const value = (token: string): number | null => {
    if (/^\d+$/.test(token)) return Number(token);
    const i = spec.names?.indexOf(token.toUpperCase()) ?? -1;
    return i >= 0 ? i + spec.min : null;
  };
  for (const item of raw.split(',')) {
    const [a, b, ...rest] = item.split('-');
    if (rest.length > 0 || a === undefined) return null;
    const lo = value(a);
    const hi = b === undefined ? lo : value(b);
    if (lo === null || hi === null || hi < lo) return null;
    for (let v = lo; v <= hi; v++) values.push(spec.name === 'day-of-week' ? v % 7 : v);
  }
  const unique = [...new Set(values)].sort((x, y) => x - y);
  return { kind: 'values', values: unique };
}

function single(f: SimpleField | null): number | null {
  return f?.kind === 'values' && f.values.length === 1 ? (f.values[0] as number) : null;
}

function weekdays(values: number[]): string {
  const first = values[0] as number;
  const last = values[values.length - 1] as number;
  if (values.length >= 3 && last - first === values.length - 1) {
    return `${WEEKDAYS[first]} to ${WEEKDAYS[last]}`;
  }
  return joinWords(values.map((v) => WEEKDAYS[v] as string));
}

/** The days part: [for "at hh:mm ..." phrases, for "every n minutes ..." phrases], or null. */
function dayPhrases(
  dom: SimpleField | null,
  month: SimpleField | null,
  dow: SimpleField | null,
): [string, string] | null {
  if (!dom || !month || !dow) return null;
  const domAny = dom.kind === 'any';
  const monthAny = month.kind === 'any';
  const dowAny = dow.kind === 'any';
  if (dom.kind === 'step' || month.kind === 'step' || dow.kind === 'step') return null;
  const monthNames =
    month.kind === 'values' ? joinWords(month.values.map((m) => MONTHS[m - 1] as string)) : '';
  if (domAny && monthAny && dowAny) return ['every day', ''];
  if (domAny && monthAny && dow.kind === 'values') {
    const p = `on ${weekdays(dow.values)}`;
    return [p, p];
  }
  if (dom.kind === 'values' && dowAny) {
    const days = dom.values;
    if (monthAny) {
      const p =
        days.length === 1
          ? `on day ${days[0]} of every month`
          : `on days ${joinWords(days.map(String))} of every month`;
      return [p, p];
    }
    if (days.length === 1) {
      const p = `on ${days[0]} ${monthNames}`;
      return [p, p];
    }
    return null;
  }
  if (domAny && dowAny && !monthAny) return [`every day in ${monthNames}`, `in ${monthNames}`];
  return null;
}

/** The time part: ['at', "at 03:00"] or ['every', "every 5 minutes"], or null. */
function timePhrase(
  sec: SimpleField | null,
  min: SimpleField | null,
  hour: SimpleField | null,
): ['at' | 'every', string] | null {
  const s = single(sec);
  const m = single(min);
  if (s !== null && m !== null && hour?.kind === 'values' && hour.values.length <= 4) {
    return ['at', `at ${joinWords(hour.values.map((h) => clockTimeOf(h, m, s)))}`];
  }
  if (hour?.kind === 'any') {
    if (min?.kind === 'any' && sec?.kind === 'any') return ['every', 'every second'];
    if (min?.kind === 'any' && sec?.kind === 'step') return ['every', every(sec.step, 'second')];
    if (s === 0 && min?.kind === 'any') return ['every', 'every minute'];
    if (s === 0 && min?.kind === 'step') return ['every', every(min.step, 'minute')];
    if (s === 0 && m === 0) return ['every', 'every hour'];
    if (s === 0 && m !== null) return ['every', `at minute ${m} of every hour`];
  }
  if (s === 0 && m === 0 && hour?.kind === 'step') return ['every', every(hour.step, 'hour')];
  return null;
}

export function describeCron(
  fields: readonly string[],
  zoneName: string,
  zoneGiven: boolean,
): string {
  const six = fields.length === 6;
  const specs = six ? [SECOND, ...FIVE_FIELDS] : FIVE_FIELDS;
  const parsed = fields.map((f, i) => simpleField(f, specs[i] as FieldSpec));
  const [sec, min, hour, dom, month, dow] = six
    ? parsed
    : [{ kind: 'values', values: [0] } as SimpleField, ...parsed];
  const time = timePhrase(sec ?? null, min ?? null, hour ?? null);
  const days = dayPhrases(dom ?? null, month ?? null, dow ?? null);
  const zone = ` (${zoneName})`;
  if (time === null || days === null) {
    return `cron: ${zoneGiven ? `TZ=${zoneName} ` : ''}${fields.join(' ')}`;
  }
  const [kind, words] = time;
  const dayWords = kind === 'at' ? days[0] : days[1];
  return `${words}${dayWords === '' ? '' : ` ${dayWords}`}${zone}`;
}
