/** Cron expressions on fixed reference dates, with and without zones. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSchedule } from '../../src/core/schedule';

const at = (iso: string): Date => new Date(iso);

function upcoming(text: string, after: string, n: number): string[] {
  return parseSchedule(text)
    .nextN(at(after), n)
    .map((d) => d.toISOString());
}

/** Counting by stepping next(), to check countBetween against. */
function countByStepping(text: string, from: string, to: string): number {
  const s = parseSchedule(text);
  let n = 0;
  for (let t = s.next(at(from)); t !== null && t <= at(to); t = s.next(t)) n++;
  return n;
}

describe('cron: UTC', () => {
  it('a 5-field expression without a zone is UTC', () => {
    const s = parseSchedule('0 3 * * *');
    assert.equal(s.kind, 'cron');
    assert.equal(s.timeZone, 'UTC');
    assert.equal(s.fixedPeriodSeconds, null);
    assert.deepEqual(upcoming('0 3 * * *', '2024-01-01T03:00:00Z', 2), [
      '2024-01-02T03:00:00.000Z',
      '2024-01-03T03:00:00.000Z',
    ]);
  });

  it('a 6-field expression has a leading seconds field', () => {
    assert.deepEqual(upcoming('*/15 * * * * *', '2024-01-01T00:00:07Z', 3), [
      '2024-01-01T00:00:15.000Z',
      '2024-01-01T00:00:30.000Z',
      '2024-01-01T00:00:45.000Z',
    ]);
    assert.equal(
      upcoming('30 0 3 * * *', '2024-01-01T00:00:00Z', 1)[0],
      '2024-01-01T03:00:30.000Z',
    );
  });

  it('next is strictly after `after`, also within a second', () => {
    assert.equal(
      upcoming('* * * * * *', '2024-01-01T00:00:00.999Z', 1)[0],
      '2024-01-01T00:00:01.000Z',
    );
    assert.equal(upcoming('* * * * *', '2024-01-01T00:00:00Z', 1)[0], '2024-01-01T00:01:00.000Z');
  });

  it('macros expand to their expressions', () => {
    assert.deepEqual(upcoming('@hourly', '2024-01-01T00:30:00Z', 1), ['2024-01-01T01:00:00.000Z']);
    assert.deepEqual(upcoming('@daily', '2024-01-01T00:30:00Z', 1), ['2024-01-02T00:00:00.000Z']);
    assert.deepEqual(upcoming('@weekly', '2024-01-01T00:30:00Z', 1), ['2024-01-07T00:00:00.000Z']);
    assert.deepEqual(upcoming('@monthly', '2024-01-01T00:30:00Z', 1), ['2024-02-01T00:00:00.000Z']);
    assert.deepEqual(upcoming('@yearly', '2024-01-01T00:30:00Z', 1), ['2025-01-01T00:00:00.000Z']);
  });

  it('day-of-month and day-of-week both restricted match either (Vixie cron)', () => {
    assert.deepEqual(upcoming('0 0 13 * 5', '2024-09-01T00:00:00Z', 3), [
      '2024-09-06T00:00:00.000Z', // Friday
      '2024-09-13T00:00:00.000Z', // Friday the 13th
      '2024-09-20T00:00:00.000Z',
    ]);
  });

  it('a ten-year outage with an every-second cron returns at once, and its missed runs are counted exactly', () => {
    const s = parseSchedule('* * * * * *');
    const started = performance.now();
    assert.equal(s.next(at('2034-01-01T00:00:00.500Z'))?.toISOString(), '2034-01-01T00:00:01.000Z');
    // next() does not step through the outage; the bound is loose so a loaded CI machine cannot trip it.
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 250, `next() took ${elapsed} ms`);
    assert.equal(
      s.countBetween(at('2014-01-01T00:00:00Z'), at('2024-01-01T00:00:00Z')),
      3652 * 86400,
    );
  });

  it('countBetween counts the half-open range and stops at the cap', () => {
    const s = parseSchedule('*/5 * * * *');
    assert.equal(s.countBetween(at('2024-01-01T00:00:00Z'), at('2024-01-01T01:00:00Z')), 12);
    assert.equal(s.countBetween(at('2024-01-01T00:00:00Z'), at('2024-01-02T00:00:00Z'), 7), 7);
    assert.equal(
      parseSchedule('0 9 * * 1-5').countBetween(
        at('2024-01-01T00:00:00Z'),
        at('2024-02-01T00:00:00Z'),
      ),
      23,
    );
  });
});

describe('cron: time zones and daylight-saving time', () => {
  it('TZ= and CRON_TZ= give the zone; wall-clock times are meant there', () => {
    assert.equal(parseSchedule('TZ=Europe/Berlin 0 3 * * *').timeZone, 'Europe/Berlin');
    assert.equal(parseSchedule('CRON_TZ=America/New_York 0 3 * * *').timeZone, 'America/New_York');
    assert.deepEqual(upcoming('TZ=Europe/Berlin 0 3 * * *', '2024-01-01T00:00:00Z', 1), [
      '2024-01-01T02:00:00.000Z',
    ]);
    assert.deepEqual(upcoming('TZ=Europe/Berlin 0 3 * * *', '2024-07-01T00:00:00Z', 1), [
      '2024-07-01T01:00:00.000Z',
    ]);
  });

  it('02:30 Europe/Berlin runs at 03:00 CEST when 02:30 is skipped, and once when 02:30 repeats', () => {
    assert.deepEqual(upcoming('TZ=Europe/Berlin 30 2 * * *', '2024-03-30T12:00:00Z', 2), [
      '2024-03-31T01:00:00.000Z',
      '2024-04-01T00:30:00.000Z',
    ]);
    assert.deepEqual(upcoming('TZ=Europe/Berlin 30 2 * * *', '2024-10-26T12:00:00Z', 2), [
      '2024-10-27T00:30:00.000Z',
      '2024-10-28T01:30:00.000Z',
    ]);
  });

  it('02:30 America/New_York runs at 03:00 EDT on 2024-03-10; 01:30 runs once, in EDT, on 2024-11-03', () => {
    assert.deepEqual(upcoming('TZ=America/New_York 30 2 * * *', '2024-03-09T12:00:00Z', 2), [
      '2024-03-10T07:00:00.000Z',
      '2024-03-11T06:30:00.000Z',
    ]);
    assert.deepEqual(upcoming('TZ=America/New_York 30 1 * * *', '2024-11-02T12:00:00Z', 2), [
      '2024-11-03T05:30:00.000Z',
      '2024-11-04T06:30:00.000Z',
    ]);
  });

  it('a daily 09:00 America/New_York stays at 09:00 local across the change', () => {
    assert.deepEqual(upcoming('TZ=America/New_York 0 9 * * *', '2024-03-09T00:00:00Z', 3), [
      '2024-03-09T14:00:00.000Z',
      '2024-03-10T13:00:00.000Z',
      '2024-03-11T13:00:00.000Z',
    ]);
  });

  it('an every-30-minutes cron runs once through a repeated hour (its first pass)', () => {
    assert.deepEqual(upcoming('TZ=America/New_York */30 * * * *', '2024-11-03T04:40:00Z', 4), [
      '2024-11-03T05:00:00.000Z', // 01:00 EDT
      '2024-11-03T05:30:00.000Z', // 01:30 EDT
      '2024-11-03T07:00:00.000Z', // 02:00 EST: 01:00 and 01:30 EST have run already
      '2024-11-03T07:30:00.000Z',
    ]);
    // from inside the second pass, the next is the first wall time after it
    assert.equal(
      upcoming('TZ=America/New_York */30 * * * *', '2024-11-03T06:10:00Z', 1)[0],
      '2024-11-03T07:00:00.000Z',
    );
  });

  it('times in a skipped hour collapse into one run at the end of the gap', () => {
    assert.deepEqual(upcoming('TZ=Europe/Berlin */20 * * * *', '2024-03-31T00:50:00Z', 3), [
      '2024-03-31T01:00:00.000Z', // 02:00, 02:20, 02:40 and 03:00 all run at 03:00 CEST, once
      '2024-03-31T01:20:00.000Z',
      '2024-03-31T01:40:00.000Z',
    ]);
  });

  it('a seconds cron in a zone crosses the changes', () => {
    assert.deepEqual(upcoming('TZ=Europe/Berlin 15 30 2 * * *', '2024-03-30T12:00:00Z', 2), [
      '2024-03-31T01:00:00.000Z',
      '2024-04-01T00:30:15.000Z',
    ]);
  });

  it('countBetween across a spring-forward gap counts the collapsed run once', () => {
    const text = 'TZ=Europe/Berlin 0 * * * *';
    assert.equal(
      parseSchedule(text).countBetween(at('2024-03-30T23:00:00Z'), at('2024-03-31T03:00:00Z')),
      4,
    );
    assert.equal(countByStepping(text, '2024-03-30T23:00:00Z', '2024-03-31T03:00:00Z'), 4);
    const every20 = 'TZ=Europe/Berlin */20 * * * *';
    assert.equal(
      parseSchedule(every20).countBetween(at('2024-03-30T00:00:00Z'), at('2024-04-01T00:00:00Z')),
      countByStepping(every20, '2024-03-30T00:00:00Z', '2024-04-01T00:00:00Z'),
    );
  });

  it('countBetween across a repeated hour counts it once, also from inside its second pass', () => {
    const text = 'TZ=Europe/Berlin */10 * * * *';
    for (const [from, to] of [
      ['2024-10-26T22:00:00Z', '2024-10-27T03:00:00Z'],
      ['2024-10-27T01:05:00Z', '2024-10-27T03:00:00Z'],
      ['2024-10-27T00:35:00Z', '2024-10-27T01:35:00Z'],
    ] as const) {
      assert.equal(
        parseSchedule(text).countBetween(at(from), at(to)),
        countByStepping(text, from, to),
        `${from} .. ${to}`,
      );
    }
    assert.equal(
      parseSchedule('TZ=Europe/Berlin 0 * * * *').countBetween(
        at('2024-10-26T22:00:00Z'),
        at('2024-10-27T03:00:00Z'),
      ),
      4,
    );
  });
});

describe('cron: describe()', () => {
  const words = (t: string): string => parseSchedule(t).describe();

  it('says common expressions in words, with the zone', () => {
    assert.equal(words('0 3 * * *'), 'at 03:00 every day (UTC)');
    assert.equal(words('TZ=Europe/Berlin 0 3 * * *'), 'at 03:00 every day (Europe/Berlin)');
    assert.equal(words('* * * * *'), 'every minute (UTC)');
    assert.equal(words('*/5 * * * *'), 'every 5 minutes (UTC)');
    assert.equal(words('* * * * * *'), 'every second (UTC)');
    assert.equal(words('*/10 * * * * *'), 'every 10 seconds (UTC)');
    assert.equal(words('0 * * * *'), 'every hour (UTC)');
    assert.equal(words('15 * * * *'), 'at minute 15 of every hour (UTC)');
    assert.equal(words('0 */6 * * *'), 'every 6 hours (UTC)');
    assert.equal(words('0 9 * * 1-5'), 'at 09:00 on Monday to Friday (UTC)');
    assert.equal(words('30 8 * * SAT,SUN'), 'at 08:30 on Sunday and Saturday (UTC)');
    assert.equal(words('0 0 1 * *'), 'at 00:00 on day 1 of every month (UTC)');
    assert.equal(words('0 0 1 1 *'), 'at 00:00 on 1 January (UTC)');
    assert.equal(words('0 6,18 * * *'), 'at 06:00 and 18:00 every day (UTC)');
    assert.equal(words('*/15 * * * 1-5'), 'every 15 minutes on Monday to Friday (UTC)');
    assert.equal(words('30 0 3 * * *'), 'at 03:00:30 every day (UTC)');
    assert.equal(words('@daily'), 'at 00:00 every day (UTC)');
  });

  it('falls back to the expression for what it cannot say', () => {
    assert.equal(words('0 0 L * *'), 'cron: 0 0 L * *');
    assert.equal(words('TZ=Europe/Berlin 0 0 * * 5#L'), 'cron: TZ=Europe/Berlin 0 0 * * 5#L');
    assert.equal(words('0 9-17/2 * * *'), 'cron: 0 9-17/2 * * *');
  });
});
