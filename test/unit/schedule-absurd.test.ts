/**
 * Absurd schedules and absurd instants: each schedule is either refused with
 * a ScheduleError or yields only dates the database can store (or null), never
 * throws anything else, and does a bounded amount of work. The work is
 * counted, not timed: calls of IsoSchedule.occurrence (one calendar step) and
 * of croner's nextRun (one cron search).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Cron } from 'croner';
import {
  checkSchedule,
  EARLIEST_OCCURRENCE_MS,
  isValidSchedule,
  LATEST_OCCURRENCE_MS,
  parseSchedule,
  type Schedule,
} from '../../src/core/schedule';
import { IsoSchedule } from '../../src/core/schedule/iso-occurrences';
import { ScheduleError, ScheduleRangeError } from '../../src/core/errors';

const NOW = new Date('2026-12-03T20:00:00Z');
const LATEST = new Date(LATEST_OCCURRENCE_MS).toISOString();

/** Counts the engine's units of work while `f` runs. */
function work<T>(f: () => T): { value: T; steps: number } {
  const isoProto = IsoSchedule.prototype as unknown as { occurrence: (i: number) => number };
  const cronProto = Cron.prototype as unknown as { nextRun: (d?: Date) => Date | null };
  const occurrence = isoProto.occurrence;
  const nextRun = cronProto.nextRun;
  let steps = 0;
  isoProto.occurrence = function (this: unknown, i: number) {
    steps++;
    return occurrence.call(this, i);
  };
  cronProto.nextRun = function (this: unknown, d?: Date) {
    steps++;
    return nextRun.call(this, d);
  };
  try {
    return { value: f(), steps };
  } finally {
    isoProto.occurrence = occurrence;
    cronProto.nextRun = nextRun;
  }
}

/** Instants from the edges of what a Date holds to the edges of the calendar. */
const AFTERS = [
  new Date(-8.64e15),
  new Date('0001-01-01T00:00:00Z'),
  new Date(EARLIEST_OCCURRENCE_MS - 1),
  new Date('1000-01-01T00:00:00Z'),
  NOW,
  new Date('9999-12-31T00:00:00Z'),
  new Date(LATEST_OCCURRENCE_MS),
  new Date(8.64e15),
];

/** One schedule search (next) may step a few dozen times; one cron count at most ~11 years of days. */
const NEXT_BUDGET = 100;
const COUNT_BUDGET = 4100;

function assertStorableAndBounded(s: Schedule, label: string): void {
  for (const after of AFTERS) {
    const { value: next, steps } = work(() => s.next(after));
    assert.ok(steps <= NEXT_BUDGET, `${label}: next(${after.toISOString()}) took ${steps} steps`);
    if (next !== null) {
      const t = next.getTime();
      assert.ok(t > after.getTime(), `${label}: next is after ${after.toISOString()}`);
      assert.ok(
        t >= EARLIEST_OCCURRENCE_MS && t <= LATEST_OCCURRENCE_MS,
        `${label}: next(${after.toISOString()}) = ${next.toISOString()} is storable`,
      );
    }
    const { value: upcoming } = work(() => s.nextN(after, 3));
    for (const d of upcoming) assert.ok(d.getTime() <= LATEST_OCCURRENCE_MS, `${label}: nextN`);
  }
  for (const [from, to] of [
    [AFTERS[0]!, AFTERS[7]!],
    [new Date('1000-01-01T00:00:00Z'), NOW],
    [NOW, new Date('9999-12-31T00:00:00Z')],
  ] as const) {
    const { value: n, steps } = work(() => s.countBetween(from, to, 2_000_000_000));
    assert.ok(Number.isSafeInteger(n) && n >= 0, `${label}: countBetween is a count (${n})`);
    assert.ok(steps <= COUNT_BUDGET, `${label}: countBetween took ${steps} steps`);
  }
}

const TABLE: Array<{ text: string; refused?: RegExp }> = [
  { text: 'R/2026-12-03T20:01:00Z/P8000Y' },
  { text: 'R/2024-01-01T00:00:00Z/P8000Y', refused: /past 9999-12-31T23:59:59\.999Z/ },
  { text: 'R/2026-12-03T20:01:00Z/P273000Y' },
  { text: 'R/2026-12-03T20:01:00Z/PT8000000000000S' },
  { text: 'R/2026-12-03T20:01:00Z/PT0S', refused: /zero/ },
  { text: 'R/2026-12-03T20:01:00Z/P0D', refused: /zero/ },
  { text: 'R0/2026-12-03T20:01:00Z/PT1H', refused: /R0 never runs/ },
  { text: 'R/2026-12-03T20:01:00Z/P999999999999Y', refused: /too long/ },
  { text: 'R/1000-01-01T00:00:00Z/PT1S' },
  { text: 'R/1000-01-01T00:00:00[America/New_York]/P1M' },
  { text: 'TZ=Europe/Berlin R/1000-01-01T00:00:00/PT1S' },
  { text: 'R/0001-01-01T00:00:00Z/P1M' },
  { text: 'R/0001-01-01T00:00:00Z/PT1S' },
  { text: 'R/9999-12-31T23:59:59Z/PT1S' },
  { text: 'R/9999-12-31T23:59:59-05:00/PT1H', refused: /past 9999-12-31/ },
  { text: 'R/P1Y/9999-12-31T23:59:59Z' },
  { text: 'R/P1M/0001-01-01T00:00:00Z' },
  { text: 'R5/P1D/0999-01-01T00:00:00Z' },
  { text: 'R99999999999/2026-12-03T20:01:00Z/PT1S' },
  { text: '* * * * * *' },
  { text: '* * * * *' },
  { text: '0 0 29 2 1' },
  { text: 'TZ=Europe/Berlin 0 0 29 2 *' },
  { text: '0 0 29 2 * TZ=Australia/Lord_Howe' },
  { text: '0 0 30 2 *', refused: /never matches/ },
  { text: 'TZ=Mars/Olympus 0 3 * * *', refused: /not a known time zone/ },
];

describe('absurd schedules', () => {
  for (const { text, refused } of TABLE) {
    it(`${text}: ${refused ? 'refused with a ScheduleError' : 'only storable dates, bounded work'}`, () => {
      if (refused) {
        assert.throws(
          () => checkSchedule(text, NOW),
          (err: unknown) => err instanceof ScheduleError && refused.test((err as Error).message),
        );
        assert.match(isValidSchedule(text, NOW) ?? '', refused);
        return;
      }
      assert.equal(isValidSchedule(text, NOW), null);
      assertStorableAndBounded(parseSchedule(text), text);
    });
  }

  it('a schedule whose first occurrence after now cannot be stored is a ScheduleRangeError naming the bound', () => {
    assert.throws(
      () => checkSchedule('R/2024-01-01T00:00:00Z/P8000Y', NOW),
      (err: unknown) =>
        err instanceof ScheduleRangeError && (err as Error).message.includes(LATEST),
    );
  });

  it('R/<next minute>/P8000Y runs once, then has ended (next is null), like an Rn/ schedule', () => {
    const s = parseSchedule('R/2026-12-03T20:01:00Z/P8000Y');
    assert.equal(s.next(NOW)?.toISOString(), '2026-12-03T20:01:00.000Z');
    assert.equal(s.next(new Date('2026-12-03T20:01:00Z')), null);
    assert.equal(s.endsInCalendar(new Date('2026-12-03T20:01:00Z')), true);
    assert.deepEqual(
      s.nextN(NOW, 5).map((d) => d.toISOString()),
      ['2026-12-03T20:01:00.000Z'],
    );
  });

  it('R/1000-01-01T00:00:00Z/PT1S reaches now in a bounded number of steps, with ~3e10 missed occurrences counted', () => {
    const s = parseSchedule('R/1000-01-01T00:00:00Z/PT1S');
    const { value, steps } = work(() => s.next(NOW));
    assert.equal(value?.toISOString(), '2026-12-03T20:00:01.000Z');
    assert.ok(steps <= 2, `${steps} steps`);
    const missed = s.countBetween(new Date('1000-01-01T00:00:00Z'), NOW, Number.MAX_SAFE_INTEGER);
    assert.equal(missed, (NOW.getTime() - Date.UTC(1000, 0, 1)) / 1000);
  });

  it('for any ISO schedule with any start year, duration and instant: storable or null, bounded, never a foreign error', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9999 }),
        fc.constantFrom('Y', 'M', 'W', 'D', 'TH', 'TM', 'TS'),
        fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 1e12 })),
        fc.constantFrom('Z', '+14:00', '-12:00', '[Europe/Berlin]', '[Pacific/Kiritimati]'),
        fc.constantFrom('', '3', '100000'),
        fc.integer({ min: -8.64e15, max: 8.64e15 }),
        (year, unit, n, zone, reps, after) => {
          const duration = unit.startsWith('T') ? `PT${n}${unit[1]}` : `P${n}${unit}`;
          const text = `R${reps}/${String(year).padStart(4, '0')}-06-15T12:00:00${zone}/${duration}`;
          let s: Schedule;
          try {
            s = checkSchedule(text, NOW);
          } catch (err) {
            assert.ok(err instanceof ScheduleError, `${text}: ${String(err)}`);
            return;
          }
          const at = new Date(after);
          const { value: next, steps } = work(() => s.next(at));
          assert.ok(steps <= NEXT_BUDGET, `${text} next(${after}): ${steps} steps`);
          if (next !== null) {
            assert.ok(next.getTime() > after, text);
            assert.ok(
              next.getTime() >= EARLIEST_OCCURRENCE_MS && next.getTime() <= LATEST_OCCURRENCE_MS,
              `${text}: ${next.toISOString()}`,
            );
          }
          const { value: n2, steps: countSteps } = work(() =>
            s.countBetween(new Date(Math.min(after, 0)), at),
          );
          assert.ok(Number.isSafeInteger(n2) && n2 >= 0, text);
          assert.ok(countSteps <= NEXT_BUDGET, `${text} countBetween: ${countSteps} steps`);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('TZ= before or after the schedule', () => {
  const berlin3am = '2024-07-01T01:00:00.000Z'; // 03:00 CEST
  const after = new Date('2024-06-30T12:00:00Z');

  for (const text of [
    'TZ=Europe/Berlin 0 3 * * *',
    'CRON_TZ=Europe/Berlin 0 3 * * *',
    '0 3 * * * TZ=Europe/Berlin',
    '0 3 * * *  CRON_TZ=Europe/Berlin',
    'R/2024-06-01T03:00:00/P1D TZ=Europe/Berlin',
  ]) {
    it(`"${text}" runs at 03:00 Berlin time`, () => {
      const s = parseSchedule(text);
      assert.equal(s.timeZone, 'Europe/Berlin');
      assert.equal(s.next(after)?.toISOString(), berlin3am);
    });
  }

  it('the form shown in docs/web.md is accepted by the validator', () => {
    assert.equal(isValidSchedule('0 3 * * * TZ=Europe/Berlin'), null);
  });

  for (const [text, why] of [
    ['0 3 * * * TZ=Mars/Olympus', /TZ=Mars\/Olympus is not a known time zone/],
    ['TZ=Europe/Berlin 0 3 * * * TZ=Europe/Paris', /time zone is given twice/],
    ['TZ=Europe/Berlin 0 3 * * * TZ=Europe/Berlin', /time zone is given twice/],
    ['0 3 * * * TZ=', /is not a known time zone/],
  ] as const) {
    it(`"${text}" is refused: ${String(why)}`, () => {
      assert.throws(
        () => parseSchedule(text),
        (err: unknown) => err instanceof ScheduleError && why.test((err as Error).message),
      );
    });
  }
});
