/**
 * Property-based tests of the schedule engine against oracles that share none
 * of its code: calendar arithmetic by luxon, the zone rule ("an occurrence
 * runs at the first instant the zone's clock shows its wall time or later")
 * by luxon plus a scan, cron matching by a small matcher written here.
 *
 * For random schedules and random `after` (many near DST changes):
 * next(after) is after `after`, is an occurrence, and no occurrence lies
 * between (it equals the oracle's minimum); countBetween agrees too.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { parseSchedule } from '../../src/core/schedule';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'Australia/Lord_Howe', // half-hour DST shift
  'America/Sao_Paulo', // had DST changes at midnight (a day without 00:00)
  'Asia/Kolkata', // no DST, +05:30
] as const;
type Zone = (typeof ZONES)[number];

// ---- oracle: zones -------------------------------------------------------

const formats = new Map<Zone, Intl.DateTimeFormat>();

/** The zone's offset at instant t, read from Intl's rendering of t. */
function offsetOf(zone: Zone, t: number): number {
  let format = formats.get(zone);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, format);
  }
  const p: Record<string, number> = {};
  for (const part of format.formatToParts(t)) p[part.type] = Number(part.value);
  const shown = Date.UTC(p.year ?? 0, (p.month ?? 1) - 1, p.day, p.hour, p.minute, p.second);
  return shown - (t - (((t % SECOND) + SECOND) % SECOND));
}

function wallOf(zone: Zone, t: number): number {
  return t + offsetOf(zone, t);
}

function fieldsOf(wall: number) {
  const d = DateTime.fromMillis(wall, { zone: 'utc' });
  return {
    year: d.year,
    month: d.month,
    day: d.day,
    hour: d.hour,
    minute: d.minute,
    second: d.second,
    millisecond: d.millisecond,
  };
}

/** The earliest instant at which the zone's clock shows `wall` or later. */
function firstInstantShowing(zone: Zone, wall: number): number {
  if (zone === 'UTC') return wall;
  const guess = DateTime.fromObject(fieldsOf(wall), { zone }).toMillis();
  if (wallOf(zone, guess) === wall) {
    // The wall time exists; look for an earlier instance of it (fall back).
    const instances = [
      guess,
      wall - offsetOf(zone, guess - 3 * HOUR),
      wall - offsetOf(zone, guess + 3 * HOUR),
    ];
    return Math.min(...instances.filter((t) => wallOf(zone, t) === wall));
  }
  // Skipped: luxon moved it forward; go back to the instant the clock jumped.
  let t = guess;
  while (wallOf(zone, t - MINUTE) >= wall) t -= MINUTE;
  while (wallOf(zone, t - SECOND) >= wall) t -= SECOND;
  return t;
}

interface Change {
  /** The first instant with the new offset. */
  at: number;
  /** New offset minus old: positive for spring forward (a gap), negative for fall back (a repeat). */
  shift: number;
}

/** The zone's offset changes in 2016..2026 (at most one a day), to aim `after` at. */
const CHANGES: Record<Zone, Change[]> = Object.fromEntries(
  ZONES.map((zone) => {
    const changes: Change[] = [];
    const step = DAY;
    for (let t = Date.UTC(2016, 0, 1); t < Date.UTC(2027, 0, 1); t += step) {
      const before = offsetOf(zone, t);
      const after = offsetOf(zone, t + step);
      if (before === after) continue;
      let lo = t;
      let hi = t + step;
      while (hi - lo > SECOND) {
        const mid = lo + Math.floor((hi - lo) / 2 / SECOND) * SECOND;
        if (offsetOf(zone, mid) === before) lo = mid;
        else hi = mid;
      }
      changes.push({ at: hi, shift: after - before });
    }
    return [zone, changes];
  }),
) as Record<Zone, Change[]>;

const zoneArb = fc.constantFrom(...ZONES);

/**
 * An instant to the millisecond: anywhere in 2016..2026, within hours of one
 * of the zone's changes, or right in a gap's surroundings or a repeated hour.
 */
function instantNear(zone: Zone): fc.Arbitrary<number> {
  const changes = CHANGES[zone];
  const anywhere = fc.integer({ min: Date.UTC(2016, 0, 1), max: Date.UTC(2027, 0, 1) });
  if (changes.length === 0) return anywhere;
  const change = fc.constantFrom(...changes);
  const hoursAround = fc
    .tuple(change, fc.integer({ min: -4 * HOUR, max: 4 * HOUR }))
    .map(([c, d]) => c.at + d);
  const rightAround = change.chain((c) => {
    const len = Math.abs(c.shift);
    return fc
      .oneof(
        fc.integer({ min: -len - 10 * MINUTE, max: 2 * len + 10 * MINUTE }),
        fc.constantFrom(-1, 0, 1, len - 1, len, -len),
      )
      .map((d) => c.at + d);
  });
  return fc.oneof(anywhere, hoursAround, rightAround, rightAround);
}

// ---- ISO schedules ---------------------------------------------------------

interface IsoCase {
  text: string;
  zone: Zone;
  anchorWall: number;
  months: number;
  days: number;
  exactMs: number;
  backward: boolean;
  count: number | null;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function wallText(wall: number): string {
  const f = fieldsOf(wall);
  return `${pad(f.year, 4)}-${pad(f.month)}-${pad(f.day)}T${pad(f.hour)}:${pad(f.minute)}:${pad(f.second)}`;
}

function durationText(months: number, days: number, exactMs: number): string {
  const y = Math.floor(months / 12);
  const m = months % 12;
  const secs = exactMs / SECOND;
  const h = Math.floor(secs / 3600);
  const mi = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  let text = 'P';
  if (y) text += `${y}Y`;
  if (m) text += `${m}M`;
  if (days % 7 === 0 && days > 0 && months === 0) text += `${days / 7}W`;
  else if (days) text += `${days}D`;
  if (exactMs) text += `T${h ? `${h}H` : ''}${mi ? `${mi}M` : ''}${s ? `${s}S` : ''}`;
  return text;
}

/** A wall time that may be a month end or close to a DST change. */
function startWall(zone: Zone): fc.Arbitrary<number> {
  const calendar = fc
    .record({
      year: fc.integer({ min: 2016, max: 2026 }),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.oneof(fc.integer({ min: 1, max: 31 }), fc.constantFrom(28, 29, 30, 31)),
    })
    .map(({ year, month, day }) =>
      Date.UTC(year, month - 1, Math.min(day, new Date(Date.UTC(year, month, 0)).getUTCDate())),
    );
  const nearChange =
    CHANGES[zone].length === 0
      ? calendar
      : fc
          .tuple(fc.constantFrom(...CHANGES[zone]), fc.integer({ min: -3, max: 0 }))
          .map(([c, d]) => Math.floor(wallOf(zone, c.at) / DAY) * DAY + d * DAY);
  const time = fc.record({
    hour: fc.oneof(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 1, 2, 3)),
    minute: fc.constantFrom(0, 0, 15, 30, 59),
    second: fc.constantFrom(0, 0, 0, 30),
  });
  return fc
    .tuple(fc.oneof(calendar, nearChange), time)
    .map(([day, t]) => day + ((t.hour * 60 + t.minute) * 60 + t.second) * SECOND);
}

const durationArb = fc.oneof(
  // fixed periods
  fc.integer({ min: 1, max: 200_000 }).map((s) => ({ months: 0, days: 0, exactMs: s * SECOND })),
  fc.constantFrom(1, 60, 3600, 86400).map((s) => ({ months: 0, days: 0, exactMs: s * SECOND })),
  // calendar periods, alone and mixed
  fc
    .record({
      months: fc.constantFrom(0, 0, 1, 1, 2, 3, 12, 13, 24),
      days: fc.constantFrom(0, 0, 1, 1, 2, 7, 14),
      exactMs: fc.constantFrom(0, 0, 0, 3 * HOUR, 90 * SECOND),
    })
    .filter((d) => d.months + d.days > 0),
);

const isoCaseArb: fc.Arbitrary<IsoCase> = zoneArb.chain((zone) =>
  fc
    .record({
      anchorWall: startWall(zone),
      duration: durationArb,
      backward: fc.boolean(),
      count: fc.option(fc.integer({ min: 1, max: 60 }), { nil: null, freq: 2 }),
      zoneSyntax: fc.constantFrom('prefix', 'bracket'),
    })
    .map(({ anchorWall, duration, backward, count, zoneSyntax }) => {
      const { months, days, exactMs } = duration;
      let when = wallText(anchorWall);
      let prefix = '';
      if (zone !== 'UTC' && zoneSyntax === 'bracket') when += `[${zone}]`;
      if (zone !== 'UTC' && zoneSyntax === 'prefix') prefix = `TZ=${zone} `;
      const dur = durationText(months, days, exactMs);
      const rep = `R${count ?? ''}`;
      const text = `${prefix}${rep}/${backward ? `${dur}/${when}` : `${when}/${dur}`}`;
      return { text, zone, anchorWall, months, days, exactMs, backward, count };
    }),
);

/** Occurrence i computed the documented way, by luxon and the zone oracle. */
function isoOccurrence(c: IsoCase, i: number): number {
  if (i === 0) return firstInstantShowing(c.zone, c.anchorWall);
  const wall = DateTime.fromMillis(c.anchorWall, { zone: 'utc' })
    .plus({ months: i * c.months, days: i * c.days })
    .toMillis();
  return firstInstantShowing(c.zone, wall) + i * c.exactMs;
}

function isoBounds(c: IsoCase): [number, number] {
  if (c.backward) return [c.count === null ? -Infinity : -c.count, -1];
  return [0, c.count === null ? Infinity : c.count - 1];
}

/** The smallest index whose occurrence is after t (hi + 1 when none), by binary search over the oracle. */
function isoIndexAfter(c: IsoCase, t: number): number {
  const [lo, hi] = isoBounds(c);
  const shortest = c.months * 28 * DAY + c.days * (DAY - 2 * HOUR) + c.exactMs;
  const reach = Math.ceil((Math.abs(t - isoOccurrence(c, 0)) + 3 * DAY) / shortest) + 2;
  let a = Math.max(lo, -reach);
  let b = Math.min(hi, reach) + 1; // answer in [a, b]
  assert.ok(a === lo || !(isoOccurrence(c, a) > t), 'oracle window too small');
  while (a < b) {
    const mid = Math.floor((a + b) / 2);
    if (isoOccurrence(c, mid) > t) b = mid;
    else a = mid + 1;
  }
  return a;
}

describe('properties: ISO 8601 repeating intervals', () => {
  it('next(after) is the first occurrence after `after` (no occurrence lies between), as the oracle computes it', () => {
    fc.assert(
      fc.property(
        isoCaseArb.chain((c) =>
          fc.tuple(
            fc.constant(c),
            fc.oneof(
              instantNear(c.zone),
              // just around an occurrence: -1 ms, itself, +1 ms, or an hour or two either side
              fc
                .tuple(
                  fc.integer({ min: -40, max: 40 }),
                  fc.constantFrom(-1, 0, 1, -HOUR, HOUR, -2 * HOUR),
                )
                .map(([i, d]) => {
                  const [lo, hi] = isoBounds(c);
                  return isoOccurrence(c, Math.min(hi, Math.max(lo, i))) + d;
                }),
            ),
          ),
        ),
        ([c, after]) => {
          const s = parseSchedule(c.text);
          const [, hi] = isoBounds(c);
          const i = isoIndexAfter(c, after);
          const expected = i > hi ? null : isoOccurrence(c, i);
          const next = s.next(new Date(after));
          assert.equal(
            next?.getTime() ?? null,
            expected,
            `${c.text} after ${new Date(after).toISOString()}`,
          );
          if (next !== null) {
            assert.ok(next.getTime() > after);
            // n is an occurrence: the instant just before it leads to it
            assert.equal(s.next(new Date(next.getTime() - 1))?.getTime(), next.getTime());
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('countBetween(from, to) is the number of occurrence indexes in (from, to]', () => {
    fc.assert(
      fc.property(
        isoCaseArb.chain((c) =>
          fc.tuple(fc.constant(c), instantNear(c.zone), fc.integer({ min: 0, max: 400 * DAY })),
        ),
        ([c, from, span]) => {
          const expected = isoIndexAfter(c, from + span) - isoIndexAfter(c, from);
          const s = parseSchedule(c.text);
          assert.equal(s.countBetween(new Date(from), new Date(from + span)), expected, c.text);
          const n = Math.min(expected, 5);
          assert.equal(s.nextN(new Date(from), n).length, n);
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---- cron --------------------------------------------------------------------

interface CronCase {
  text: string;
  zone: Zone;
  seconds: number[];
  minutes: number[];
  hours: number[];
  doms: Set<number> | null; // null = '*'
  months: Set<number>;
  dows: Set<number> | null;
}

function expand(field: string, min: number, max: number): number[] {
  const out = new Set<number>();
  for (const item of field.split(',')) {
    const [range = '', stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    const [a, b] = range === '*' ? [min, max] : range.split('-').map(Number);
    const lo = a as number;
    const hi = b ?? (stepText === undefined ? lo : max);
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return [...out].sort((x, y) => x - y);
}

const cronCaseArb: fc.Arbitrary<CronCase> = fc
  .record({
    zone: zoneArb,
    sec: fc.constantFrom(null, null, '0', '30', '*/20', '10,40'),
    min: fc.constantFrom('*', '*/15', '0', '30', '0,30', '5-10', '*/7'),
    hour: fc.constantFrom('*', '*', '2', '1', '1-3', '*/6', '0', '23', '9-17', '1,2,3'),
    // mostly every day, so that the days of DST changes match often
    dom: fc.constantFrom('*', '*', '*', '*', '1', '15', '28', '1,15'),
    month: fc.constantFrom('*', '*', '*', '*', '*', '3', '3,10', '11', '1-6'),
    dow: fc.constantFrom('*', '*', '*', '*', '0', '1-5', '6'),
    syntax: fc.constantFrom('TZ', 'CRON_TZ'),
  })
  .map(({ zone, sec, min, hour, dom, month, dow, syntax }) => {
    const fields = [min, hour, dom, month, dow].join(' ');
    const expression = sec === null ? fields : `${sec} ${fields}`;
    const text = zone === 'UTC' ? expression : `${syntax}=${zone} ${expression}`;
    return {
      text,
      zone,
      seconds: sec === null ? [0] : expand(sec, 0, 59),
      minutes: expand(min, 0, 59),
      hours: expand(hour, 0, 23),
      doms: dom === '*' ? null : new Set(expand(dom, 1, 31)),
      months: new Set(expand(month, 1, 12)),
      dows: dow === '*' ? null : new Set(expand(dow, 0, 6)),
    };
  });

function dayMatches(c: CronCase, dayWall: number): boolean {
  const d = new Date(dayWall);
  if (!c.months.has(d.getUTCMonth() + 1)) return false;
  const domOk = c.doms === null || c.doms.has(d.getUTCDate());
  const dowOk = c.dows === null || c.dows.has(d.getUTCDay());
  // Vixie cron: when both day fields are restricted, either may match.
  return c.doms !== null && c.dows !== null ? domOk || dowOk : domOk && dowOk;
}

/**
 * The first occurrence after `after`: every matching wall time from a margin
 * before the wall time of `after` on, mapped by the zone rule, minimum taken
 * over a margin past the first hit (so the engine's monotonicity is not assumed).
 */
function cronOracle(c: CronCase, after: number): number | null {
  const margin = 3 * HOUR;
  const from = wallOf(c.zone, after) - margin;
  const times: number[] = [];
  for (const h of c.hours)
    for (const m of c.minutes)
      for (const s of c.seconds) times.push(((h * 60 + m) * 60 + s) * SECOND);
  let best: number | null = null;
  let bestWall = 0;
  for (let day = Math.floor(from / DAY) * DAY; day < from + 800 * DAY; day += DAY) {
    if (best !== null && day > bestWall + margin) break;
    if (!dayMatches(c, day)) continue;
    for (const t of times) {
      const wall = day + t;
      if (wall < from) continue;
      if (best !== null && wall > bestWall + margin) break;
      const instant = firstInstantShowing(c.zone, wall);
      if (instant > after && (best === null || instant < best)) {
        best = instant;
        bestWall = wall;
      }
    }
  }
  return best;
}

describe('properties: cron expressions', () => {
  it('next(after) is after `after`, is an occurrence, and no occurrence lies between (oracle minimum)', () => {
    fc.assert(
      fc.property(
        cronCaseArb.chain((c) => fc.tuple(fc.constant(c), instantNear(c.zone))),
        ([c, after]) => {
          const s = parseSchedule(c.text);
          const next = s.next(new Date(after));
          assert.equal(
            next?.getTime() ?? null,
            cronOracle(c, after),
            `${c.text} after ${new Date(after).toISOString()}`,
          );
          if (next !== null) {
            assert.ok(next.getTime() > after);
            assert.equal(s.next(new Date(next.getTime() - 1))?.getTime(), next.getTime());
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('from inside the second pass of a repeated hour, next and countBetween skip the wall times that ran on the first pass', () => {
    const dstZones = ZONES.filter((z) => CHANGES[z].some((c) => c.shift < 0));
    const arb = fc.tuple(cronCaseArb, fc.constantFrom(...dstZones)).chain(([c, zone]) => {
      const everyDay = { ...c, zone, doms: null, months: new Set(expand('*', 1, 12)), dows: null };
      const fields = c.text.replace(/^\S+=\S+ /, '').split(' ');
      const timeFields = fields.slice(0, fields.length - 3);
      const text = `TZ=${zone} ${[...timeFields, '*', '*', '*'].join(' ')}`;
      const repeats = CHANGES[zone].filter((ch) => ch.shift < 0);
      return fc.tuple(
        fc.constant({ ...everyDay, text }),
        fc
          .tuple(fc.constantFrom(...repeats), fc.double({ min: 0, max: 1, noNaN: true }))
          .map(([ch, f]) => ch.at + Math.floor(f * -ch.shift)),
        fc.integer({ min: 0, max: 2 * HOUR }),
      );
    });
    fc.assert(
      fc.property(arb, ([c, after, span]) => {
        const s = parseSchedule(c.text);
        const label = `${c.text} after ${new Date(after).toISOString()}`;
        const next = s.next(new Date(after));
        assert.equal(next?.getTime() ?? null, cronOracle(c, after), label);
        let stepped = 0;
        for (
          let t = s.next(new Date(after));
          t !== null && t.getTime() <= after + span;
          t = s.next(t)
        )
          stepped++;
        assert.equal(s.countBetween(new Date(after), new Date(after + span)), stepped, label);
      }),
      { numRuns: 80 },
    );
  });

  it('countBetween(from, to) equals the number of steps of next() in (from, to]', () => {
    fc.assert(
      fc.property(
        cronCaseArb.chain((c) =>
          fc.tuple(fc.constant(c), instantNear(c.zone), fc.integer({ min: 0, max: 3 * HOUR })),
        ),
        ([c, from, span]) => {
          const s = parseSchedule(c.text);
          let stepped = 0;
          for (
            let t = s.next(new Date(from));
            t !== null && t.getTime() <= from + span;
            t = s.next(t)
          )
            stepped++;
          assert.equal(s.countBetween(new Date(from), new Date(from + span)), stepped, c.text);
        },
      ),
      { numRuns: 200 },
    );
  });
});
