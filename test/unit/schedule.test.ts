/**
 * The schedule engine on fixed reference dates: ISO 8601 repeating intervals,
 * calendar arithmetic, daylight-saving time, bounds, outages, descriptions.
 * Cron expressions: schedule-cron.test.ts; bad input: schedule-errors.test.ts;
 * random cases: schedule-properties.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  isValidSchedule,
  legacySchedule,
  nextOccurrence,
  parseSchedule,
} from '../../src/core/schedule';
import { ScheduleSyntaxError } from '../../src/core/errors';

const at = (iso: string): Date => new Date(iso);

function upcoming(text: string, after: string, n: number): string[] {
  return parseSchedule(text)
    .nextN(at(after), n)
    .map((d) => d.toISOString());
}

function nextIso(text: string, after: string): string | null {
  return parseSchedule(text).next(at(after))?.toISOString() ?? null;
}

describe('ISO 8601 repeating intervals: calendar arithmetic', () => {
  it('`R/2024-01-31T00:00Z/P1M` falls on Feb 29 in 2024 and returns to the 31st', () => {
    assert.deepEqual(upcoming('R/2024-01-31T00:00Z/P1M', '2024-01-01T00:00:00Z', 5), [
      '2024-01-31T00:00:00.000Z',
      '2024-02-29T00:00:00.000Z',
      '2024-03-31T00:00:00.000Z',
      '2024-04-30T00:00:00.000Z',
      '2024-05-31T00:00:00.000Z',
    ]);
  });

  it('a monthly schedule from the 31st falls on Feb 28 in a common year', () => {
    assert.equal(
      nextIso('R/2023-01-31T00:00:00Z/P1M', '2023-01-31T00:00:00Z'),
      '2023-02-28T00:00:00.000Z',
    );
  });

  it('occurrence k is counted from the start, not from the previous occurrence (no drift after February)', () => {
    // Stepping from Feb 29 would give Mar 29; counting from Jan 31 gives Mar 31.
    assert.equal(
      nextIso('R/2024-01-31T12:00:00Z/P1M', '2024-02-29T12:00:00Z'),
      '2024-03-31T12:00:00.000Z',
    );
    assert.equal(
      nextIso('R/2024-01-31T12:00:00Z/P1M', '2034-11-15T00:00:00Z'),
      '2034-11-30T12:00:00.000Z',
    );
  });

  it('P1Y from 2024-02-29 falls on Feb 28 in common years and Feb 29 in leap years', () => {
    assert.deepEqual(upcoming('R/2024-02-29T00:00:00Z/P1Y', '2024-02-29T00:00:00Z', 4), [
      '2025-02-28T00:00:00.000Z',
      '2026-02-28T00:00:00.000Z',
      '2027-02-28T00:00:00.000Z',
      '2028-02-29T00:00:00.000Z',
    ]);
    assert.equal(
      nextIso('R/2024-02-29T00:00:00Z/P1Y', '2099-03-01T00:00:00Z'),
      '2100-02-28T00:00:00.000Z',
    );
    assert.equal(
      nextIso('R/2024-02-29T00:00:00Z/P1Y', '2399-03-01T00:00:00Z'),
      '2400-02-29T00:00:00.000Z',
    );
  });

  it('P1M2DT3H adds k months, then 2k days on the calendar, then 3k hours', () => {
    assert.deepEqual(upcoming('R/2024-01-31T00:00:00Z/P1M2DT3H', '2024-01-31T00:00:00Z', 2), [
      '2024-03-02T03:00:00.000Z', // Jan 31 + 1M = Feb 29, + 2D = Mar 2, + 3H
      '2024-04-04T06:00:00.000Z', // Jan 31 + 2M = Mar 31, + 4D = Apr 4, + 6H
    ]);
  });

  it('P2W repeats every 14 days', () => {
    assert.deepEqual(upcoming('R/2024-01-01T08:00:00Z/P2W', '2024-01-01T08:00:00Z', 2), [
      '2024-01-15T08:00:00.000Z',
      '2024-01-29T08:00:00.000Z',
    ]);
  });

  it('a start with no offset is UTC, and a date alone is midnight UTC', () => {
    assert.equal(
      nextIso('R/2013-05-29T00:00:00/PT1M', '2013-05-29T00:00:30Z'),
      '2013-05-29T00:01:00.000Z',
    );
    assert.equal(nextIso('R/2024-01-01/P1D', '2023-06-01T00:00:00Z'), '2024-01-01T00:00:00.000Z');
  });

  it('a start with an offset does its calendar arithmetic in that offset', () => {
    const s = parseSchedule('R/2024-01-30T23:00:00-05:00/P1M');
    assert.equal(s.timeZone, 'UTC-05:00');
    // Jan 30 23:00 -05:00 + 1 month = Feb 29 23:00 -05:00 (in UTC it would be Feb 28's evening)
    assert.equal(s.next(at('2024-02-01T00:00:00Z'))?.toISOString(), '2024-03-01T04:00:00.000Z');
    assert.equal(s.fixedPeriodSeconds, null);
    assert.equal(parseSchedule('R/2024-01-01T00:00:00+05:30/P1D').fixedPeriodSeconds, 86400);
  });

  it('before the start, the next occurrence is the start itself', () => {
    assert.equal(
      nextIso('R/2024-06-01T10:00:00Z/PT1H', '2020-01-01T00:00:00Z'),
      '2024-06-01T10:00:00.000Z',
    );
  });

  it('an occurrence is not after itself: next(occurrence) is the following one', () => {
    assert.equal(
      nextIso('R/2024-01-01T00:00:00Z/PT1H', '2024-01-01T05:00:00Z'),
      '2024-01-01T06:00:00.000Z',
    );
    assert.equal(
      nextIso('R/2024-01-01T00:00:00Z/PT1H', '2024-01-01T04:59:59.999Z'),
      '2024-01-01T05:00:00.000Z',
    );
  });

  it('a start with fractional seconds keeps its milliseconds', () => {
    assert.equal(
      nextIso('R/2024-01-01T00:00:00.250Z/PT1S', '2024-01-01T00:00:01Z'),
      '2024-01-01T00:00:01.250Z',
    );
  });
});

describe('ISO 8601 repeating intervals: bounds', () => {
  it('R5 ends after its 5th occurrence: next returns null', () => {
    const s = parseSchedule('R5/2024-01-01T00:00:00Z/PT1H');
    assert.deepEqual(
      s.nextN(at('2023-12-31T00:00:00Z'), 10).map((d) => d.toISOString()),
      [
        '2024-01-01T00:00:00.000Z',
        '2024-01-01T01:00:00.000Z',
        '2024-01-01T02:00:00.000Z',
        '2024-01-01T03:00:00.000Z',
        '2024-01-01T04:00:00.000Z',
      ],
    );
    assert.equal(s.next(at('2024-01-01T03:59:59Z'))?.toISOString(), '2024-01-01T04:00:00.000Z');
    assert.equal(s.next(at('2024-01-01T04:00:00Z')), null);
    assert.equal(s.next(at('2030-01-01T00:00:00Z')), null);
    assert.deepEqual(s.nextN(at('2024-01-01T04:00:00Z'), 3), []);
  });

  it('R1 runs once, at the start', () => {
    const s = parseSchedule('R1/2024-01-01T00:00:00Z/P1D');
    assert.equal(s.next(at('2023-01-01T00:00:00Z'))?.toISOString(), '2024-01-01T00:00:00.000Z');
    assert.equal(s.next(at('2024-01-01T00:00:00Z')), null);
  });

  it('R3/PT1H/<end> runs at the starts of the three hours that end at <end>, then ends', () => {
    assert.deepEqual(upcoming('R3/PT1H/2024-01-02T00:00:00Z', '2020-01-01T00:00:00Z', 5), [
      '2024-01-01T21:00:00.000Z',
      '2024-01-01T22:00:00.000Z',
      '2024-01-01T23:00:00.000Z',
    ]);
    assert.equal(nextIso('R3/PT1H/2024-01-02T00:00:00Z', '2024-01-01T23:00:00Z'), null);
  });

  it('an unbounded R/<duration>/<end> runs up to the end and then ends', () => {
    const s = parseSchedule('R/P1D/2024-12-31T06:00:00Z');
    assert.equal(s.next(at('2001-05-05T12:00:00Z'))?.toISOString(), '2001-05-06T06:00:00.000Z');
    assert.equal(s.next(at('2024-12-29T06:00:00Z'))?.toISOString(), '2024-12-30T06:00:00.000Z');
    assert.equal(s.next(at('2024-12-30T06:00:00Z')), null);
  });

  it('R/P1M/<end> counts months back from the end (the 31st, then the last day of shorter months)', () => {
    const s = parseSchedule('R4/P1M/2024-03-31T00:00:00Z');
    assert.deepEqual(
      s.nextN(at('2020-01-01T00:00:00Z'), 9).map((d) => d.toISOString()),
      [
        '2023-11-30T00:00:00.000Z',
        '2023-12-31T00:00:00.000Z',
        '2024-01-31T00:00:00.000Z',
        '2024-02-29T00:00:00.000Z',
      ],
    );
  });
});

describe('ISO 8601 repeating intervals: daylight-saving time', () => {
  it('P1D at 02:30 Europe/Berlin runs at 03:00 CEST on the day 02:30 is skipped, then at 02:30 again', () => {
    assert.deepEqual(
      upcoming('R/2024-03-29T02:30:00[Europe/Berlin]/P1D', '2024-03-29T00:00:00Z', 4),
      [
        '2024-03-29T01:30:00.000Z', // 02:30 CET
        '2024-03-30T01:30:00.000Z', // 02:30 CET
        '2024-03-31T01:00:00.000Z', // 02:30 does not exist: 03:00 CEST, the first instant after the gap
        '2024-04-01T00:30:00.000Z', // 02:30 CEST
      ],
    );
  });

  it('P1D at 02:30 Europe/Berlin runs once on the day 02:30 repeats, on its first pass', () => {
    assert.deepEqual(
      upcoming('TZ=Europe/Berlin R/2024-10-26T02:30:00/P1D', '2024-10-26T00:00:00Z', 3),
      [
        '2024-10-26T00:30:00.000Z', // 02:30 CEST
        '2024-10-27T00:30:00.000Z', // 02:30 CEST, the first pass; 01:30Z (02:30 CET) is not an occurrence
        '2024-10-28T01:30:00.000Z', // 02:30 CET
      ],
    );
    assert.equal(
      nextIso('TZ=Europe/Berlin R/2024-10-26T02:30:00/P1D', '2024-10-27T00:30:00Z'),
      '2024-10-28T01:30:00.000Z',
    );
  });

  it('a start that is itself in the gap runs at the end of the gap and keeps its wall time afterwards', () => {
    assert.deepEqual(
      upcoming('TZ=Europe/Berlin R/2024-03-31T02:30:00/P1D', '2024-03-30T00:00:00Z', 2),
      ['2024-03-31T01:00:00.000Z', '2024-04-01T00:30:00.000Z'],
    );
  });

  it('a numeric offset with a zone picks the pass of a repeated hour', () => {
    assert.equal(
      nextIso('R/2024-10-27T02:30:00+01:00[Europe/Berlin]/P1D', '2024-10-27T00:00:00Z'),
      '2024-10-27T01:30:00.000Z',
    );
    assert.equal(
      nextIso('R/2024-10-27T02:30:00[Europe/Berlin]/P1D', '2024-10-27T00:00:00Z'),
      '2024-10-27T00:30:00.000Z',
    );
  });

  it('a start written in Z with a zone repeats its local time in that zone', () => {
    // 01:30Z is 02:30 CET; every day at 02:30 Berlin time
    assert.equal(
      nextIso('TZ=Europe/Berlin R/2024-03-01T01:30:00Z/P1D', '2024-04-10T12:00:00Z'),
      '2024-04-11T00:30:00.000Z',
    );
  });

  it('a daily 09:00 America/New_York stays at 09:00 local across both changes', () => {
    assert.deepEqual(
      upcoming('R/2024-03-09T09:00:00[America/New_York]/P1D', '2024-03-09T00:00:00Z', 3),
      [
        '2024-03-09T14:00:00.000Z', // EST
        '2024-03-10T13:00:00.000Z', // EDT
        '2024-03-11T13:00:00.000Z',
      ],
    );
    assert.deepEqual(
      upcoming('R/2024-11-02T09:00:00[America/New_York]/P1D', '2024-11-02T00:00:00Z', 3),
      [
        '2024-11-02T13:00:00.000Z', // EDT
        '2024-11-03T14:00:00.000Z', // EST
        '2024-11-04T14:00:00.000Z',
      ],
    );
  });

  it('P1D at 02:30 America/New_York runs at 03:00 EDT on 2024-03-10 and once at 01:30 EDT on 2024-11-03', () => {
    assert.equal(
      nextIso('TZ=America/New_York R/2024-03-01T02:30:00/P1D', '2024-03-09T12:00:00Z'),
      '2024-03-10T07:00:00.000Z',
    );
    assert.deepEqual(
      upcoming('TZ=America/New_York R/2024-11-01T01:30:00/P1D', '2024-11-02T12:00:00Z', 2),
      [
        '2024-11-03T05:30:00.000Z', // 01:30 EDT (the first pass); 06:30Z is 01:30 EST, not an occurrence
        '2024-11-04T06:30:00.000Z',
      ],
    );
  });

  it('PT hours are elapsed time in a zone: PT24H is not P1D across a change', () => {
    assert.equal(
      nextIso('TZ=Europe/Berlin R/2024-03-30T12:00:00/PT24H', '2024-03-30T12:00:00Z'),
      '2024-03-31T11:00:00.000Z', // 13:00 CEST
    );
    assert.equal(
      nextIso('TZ=Europe/Berlin R/2024-03-30T12:00:00/P1D', '2024-03-30T12:00:00Z'),
      '2024-03-31T10:00:00.000Z', // 12:00 CEST
    );
    assert.deepEqual(
      upcoming('TZ=Europe/Berlin R/2024-03-31T00:00:00/PT1H', '2024-03-30T23:30:00Z', 3),
      [
        '2024-03-31T00:00:00.000Z', // 01:00 CET
        '2024-03-31T01:00:00.000Z', // 03:00 CEST: one hour later, the clock skipped 02:00
        '2024-03-31T02:00:00.000Z', // 04:00 CEST
      ],
    );
  });

  it('a monthly 09:00 Europe/Berlin keeps 09:00 local in winter and summer', () => {
    assert.deepEqual(
      upcoming('TZ=Europe/Berlin R/2024-01-31T09:00:00/P1M', '2024-02-01T00:00:00Z', 3),
      ['2024-02-29T08:00:00.000Z', '2024-03-31T07:00:00.000Z', '2024-04-30T07:00:00.000Z'],
    );
  });
});

describe('ISO 8601 repeating intervals: long outages', () => {
  it('after a ten-year outage a PT1S schedule returns the next second at once', () => {
    const s = parseSchedule('R/2014-01-01T00:00:00Z/PT1S');
    const started = performance.now();
    const next = s.next(at('2024-01-01T00:00:00.500Z'));
    const count = s.countBetween(at('2014-01-01T00:00:00Z'), at('2024-01-01T00:00:00Z'));
    const elapsed = performance.now() - started;
    assert.equal(next?.toISOString(), '2024-01-01T00:00:01.000Z');
    assert.equal(count, 3652 * 86400); // 2014..2023 has two leap days
    assert.ok(elapsed < 50, `took ${elapsed} ms`);
  });

  it('after a century a monthly schedule returns at once, on the right day', () => {
    const s = parseSchedule('R/2000-01-31T00:00:00[Europe/Berlin]/P1M');
    const started = performance.now();
    const next = s.next(at('2100-02-10T00:00:00Z'));
    const count = s.countBetween(at('2000-01-30T00:00:00Z'), at('2100-01-31T00:00:00Z'));
    assert.ok(performance.now() - started < 50);
    assert.equal(next?.toISOString(), '2100-02-27T23:00:00.000Z'); // Feb 28 00:00 CET
    assert.equal(count, 100 * 12 + 1);
  });
});

describe('countBetween', () => {
  it('counts occurrences in the half-open range (from, to]', () => {
    const s = parseSchedule('R/2024-01-01T00:00:00Z/PT1H');
    assert.equal(s.countBetween(at('2024-01-01T00:00:00Z'), at('2024-01-01T03:00:00Z')), 3);
    assert.equal(s.countBetween(at('2023-12-31T23:59:59Z'), at('2024-01-01T00:00:00Z')), 1);
    assert.equal(s.countBetween(at('2024-01-01T03:00:00Z'), at('2024-01-01T03:00:00Z')), 0);
    assert.equal(s.countBetween(at('2024-01-02T00:00:00Z'), at('2024-01-01T00:00:00Z')), 0);
  });

  it('stops at the cap', () => {
    const s = parseSchedule('R/2024-01-01T00:00:00Z/PT1S');
    assert.equal(s.countBetween(at('2024-01-01T00:00:00Z'), at('2025-01-01T00:00:00Z'), 100), 100);
  });

  it('counts calendar occurrences and respects Rn and the start', () => {
    assert.equal(
      parseSchedule('R/2024-01-31T00:00:00Z/P1M').countBetween(
        at('2024-01-31T00:00:00Z'),
        at('2024-12-31T00:00:00Z'),
      ),
      11,
    );
    assert.equal(
      parseSchedule('R5/2024-01-01T00:00:00Z/P1D').countBetween(
        at('2000-01-01T00:00:00Z'),
        at('2030-01-01T00:00:00Z'),
      ),
      5,
    );
    assert.equal(
      parseSchedule('R/PT1H/2024-01-02T00:00:00Z').countBetween(
        at('2024-01-01T20:00:00Z'),
        at('2024-06-01T00:00:00Z'),
      ),
      3,
    );
  });
});

describe('fixedPeriodSeconds and timeZone', () => {
  it('is the period for PT durations, and for days and weeks in UTC or a fixed offset', () => {
    const period = (t: string): number | null => parseSchedule(t).fixedPeriodSeconds;
    assert.equal(period('R/2024-01-01T00:00:00Z/PT90S'), 90);
    assert.equal(period('R/2024-01-01T00:00:00Z/PT1H30M'), 5400);
    assert.equal(period('R/2024-01-01T00:00:00Z/P1D'), 86400);
    assert.equal(period('R/2024-01-01T00:00:00Z/P1W'), 604800);
    assert.equal(period('R/2024-01-01T00:00:00Z/P1DT1H'), 90000);
    assert.equal(period('TZ=Europe/Berlin R/2024-01-01T00:00:00/PT1H'), 3600);
    assert.equal(period('TZ=Europe/Berlin R/2024-01-01T00:00:00/P1D'), null);
    assert.equal(period('R/2024-01-01T00:00:00Z/P1M'), null);
    assert.equal(period('0 * * * *'), null);
  });

  it('names the zone: UTC, the canonical IANA name, or a fixed offset', () => {
    assert.equal(parseSchedule('R/2024-01-01T00:00:00/PT1H').timeZone, 'UTC');
    assert.equal(parseSchedule('R/2024-01-01T00:00:00+00:00/PT1H').timeZone, 'UTC');
    assert.equal(
      parseSchedule('TZ=europe/berlin R/2024-01-01T00:00:00/P1D').timeZone,
      'Europe/Berlin',
    );
    assert.equal(
      parseSchedule('R/2024-01-01T00:00:00[America/New_York]/P1D').timeZone,
      'America/New_York',
    );
    assert.equal(parseSchedule('R/2024-01-01T00:00:00+0530/P1D').timeZone, 'UTC+05:30');
    assert.equal(parseSchedule('  R/2024-01-01T00:00:00Z/P1D ').text, 'R/2024-01-01T00:00:00Z/P1D');
    assert.equal(parseSchedule('R/2024-01-01T00:00:00Z/P1D').kind, 'iso');
  });
});

describe('describe()', () => {
  const words = (t: string): string => parseSchedule(t).describe();

  it('says fixed periods in words', () => {
    assert.equal(words('R/2024-01-01T00:00:00Z/PT1S'), 'every second');
    assert.equal(words('R/2024-01-01T00:00:00Z/PT1M'), 'every minute');
    assert.equal(words('R/2024-01-01T00:00:00Z/PT5S'), 'every 5 seconds');
    assert.equal(words('R/2024-01-01T00:00:00Z/PT5M'), 'every 5 minutes');
    assert.equal(words('R/2024-01-01T00:00:00Z/PT2H'), 'every 2 hours');
  });

  it('says calendar periods with their day and time', () => {
    assert.equal(words('R/2024-01-01T03:00:00Z/P1D'), 'every day at 03:00 UTC');
    assert.equal(words('R/2024-01-31T00:00:00Z/P1M'), 'every month on day 31 at 00:00 UTC');
    assert.equal(words('R/2024-01-01T00:00:00Z/P2W'), 'every 2 weeks on Monday at 00:00 UTC');
    assert.equal(words('R/2024-02-29T00:00:00Z/P1Y'), 'every year on 29 February at 00:00 UTC');
    assert.equal(
      words('TZ=Europe/Berlin R/2024-03-01T02:30:00/P1D'),
      'every day at 02:30 Europe/Berlin',
    );
    assert.equal(words('R/2024-01-01T06:00:30+02:00/P3D'), 'every 3 days at 06:00:30 UTC+02:00');
    assert.equal(
      words('R/2024-01-31T00:00:00Z/P1M2DT3H'),
      'every 1 month, 2 days and 3 hours from 2024-01-31 00:00 UTC',
    );
  });

  it('says how many times a bounded schedule runs, and when', () => {
    assert.equal(
      words('R12/2024-01-01T00:00:00Z/PT1H'),
      'every hour, 12 times from 2024-01-01 00:00 UTC',
    );
    assert.equal(words('R1/2024-01-01T00:00:00Z/PT1H'), 'once at 2024-01-01 00:00 UTC');
    assert.equal(
      words('R3/PT1H/2024-01-02T00:00:00Z'),
      'every hour, 3 times until 2024-01-02 00:00 UTC',
    );
    assert.equal(
      words('R/P1D/2024-12-31T06:00:00Z'),
      'every day at 06:00 UTC until 2024-12-31 06:00 UTC',
    );
  });
});

describe('nextOccurrence, legacySchedule, isValidSchedule', () => {
  it('nextOccurrence takes a parsed schedule or its text', () => {
    const after = at('2024-01-01T00:00:30Z');
    assert.equal(
      nextOccurrence('R/2024-01-01T00:00:00Z/PT1M', after)?.toISOString(),
      '2024-01-01T00:01:00.000Z',
    );
    assert.equal(
      nextOccurrence(parseSchedule('0 3 * * *'), after)?.toISOString(),
      '2024-01-01T03:00:00.000Z',
    );
    assert.equal(nextOccurrence('R1/2020-01-01T00:00:00Z/PT1M', after), null);
    assert.throws(() => nextOccurrence('nonsense', after), ScheduleSyntaxError);
  });

  it('legacySchedule turns next_run + interval into R/<next_run>/PT<n>S with the same phase and period', () => {
    const text = legacySchedule(at('2024-01-01T00:05:00Z'), 300);
    assert.equal(text, 'R/2024-01-01T00:05:00Z/PT300S');
    const s = parseSchedule(text);
    assert.equal(s.fixedPeriodSeconds, 300);
    assert.equal(s.next(at('2024-01-01T00:05:00Z'))?.toISOString(), '2024-01-01T00:10:00.000Z');
    assert.equal(
      legacySchedule(at('2024-01-01T00:05:00.250Z'), 60),
      'R/2024-01-01T00:05:00.250Z/PT60S',
    );
    assert.equal(isValidSchedule(legacySchedule(at('2024-01-01T00:05:00.250Z'), 60)), null);
  });

  it('legacySchedule refuses an interval that is not a whole number of seconds >= 1', () => {
    for (const bad of [0, -5, 1.5, Number.NaN]) {
      assert.throws(() => legacySchedule(at('2024-01-01T00:00:00Z'), bad), ScheduleSyntaxError);
    }
    assert.throws(() => legacySchedule(new Date(Number.NaN), 60), ScheduleSyntaxError);
  });

  it('isValidSchedule returns null for a valid schedule and the message otherwise', () => {
    assert.equal(isValidSchedule('R/2024-01-01T00:00:00Z/PT1M'), null);
    assert.equal(isValidSchedule('TZ=Europe/Berlin 0 3 * * *'), null);
    assert.equal(
      isValidSchedule('R/xx/PT1M'),
      'schedule "R/xx/PT1M": the start must be an ISO 8601 date-time such as 2024-01-01T00:00:00Z',
    );
  });

  it('an invalid Date for `after` is a TypeError, not a silent null', () => {
    assert.throws(
      () => parseSchedule('R/2024-01-01T00:00:00Z/PT1M').next(new Date(Number.NaN)),
      TypeError,
    );
    assert.throws(() => parseSchedule('* * * * *').next(new Date(Number.NaN)), TypeError);
  });
});
