/** Bad schedules raise ScheduleSyntaxError, and the message says what was expected. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isValidSchedule, parseSchedule } from '../../src/core/schedule';
import { CronqError, ScheduleSyntaxError } from '../../src/core/errors';

function rejects(text: string, expected: RegExp): void {
  assert.throws(
    () => parseSchedule(text),
    (err: unknown) => {
      assert.ok(err instanceof ScheduleSyntaxError, `${text}: ${String(err)}`);
      assert.ok(err instanceof CronqError);
      assert.match(err.message, expected);
      assert.ok(err.message.startsWith(`schedule ${JSON.stringify(text.trim())}: `), err.message);
      return true;
    },
    text,
  );
  assert.equal(typeof isValidSchedule(text), 'string');
}

describe('schedule errors', () => {
  it('an empty schedule or garbage says which forms are accepted', () => {
    rejects('', /empty; expected an ISO 8601 repeating interval .* or a cron expression/);
    rejects('   ', /empty/);
    rejects(
      'garbage',
      /expected an ISO 8601 repeating interval such as R\/2024-01-01T00:00:00Z\/PT1H/,
    );
    rejects('every day', /cron expression has 5 fields .*got 2/);
  });

  it('a start that is not a date-time says what a date-time looks like', () => {
    assert.throws(
      () => parseSchedule('R/xx/PT1M'),
      new ScheduleSyntaxError(
        'schedule "R/xx/PT1M": the start must be an ISO 8601 date-time such as 2024-01-01T00:00:00Z',
      ),
    );
    rejects('R/20240101T000000Z/PT1M', /the start must be an ISO 8601 date-time.*extended form/);
  });

  it('out-of-range date fields name the field and the range', () => {
    rejects('R/2024-13-01T00:00:00Z/PT1M', /has month 13, expected 01-12/);
    rejects('R/2023-02-29T00:00:00Z/P1Y', /has day 29, expected 01-28 for 2023-02/);
    rejects('R/2024-01-01T24:00:00Z/PT1H', /has hour 24, expected 00-23/);
    rejects('R/2024-01-01T00:60:00Z/PT1H', /has minute 60/);
    rejects('R/2024-01-01T00:00:60Z/PT1H', /has second 60/);
    rejects('R/2024-01-01T00:00:00+19:00/PT1H', /offset \+19:00, expected -18:00 to \+18:00/);
    rejects('R/P1D/2024-00-10T00:00:00Z', /the end .* has month 00/);
  });

  it('a zero, empty, fractional or malformed duration is refused', () => {
    rejects('R/2024-01-01/PT0S', /duration PT0S is zero; it must be longer than zero/);
    rejects('R/2024-01-01T00:00:00Z/P0D', /is zero/);
    rejects('R/2024-01-01T00:00:00Z/PT', /the duration must be an ISO 8601 duration such as PT1M/);
    rejects('R/2024-01-01T00:00:00Z/P', /the duration must be an ISO 8601 duration/);
    rejects('R/2024-01-01T00:00:00Z/P1H', /the duration must be an ISO 8601 duration/);
    rejects('R/2024-01-01T00:00:00Z/PT1.5S', /has a fraction; durations are whole numbers/);
    rejects('R/2024-01-01T00:00:00Z/P0.5D', /has a fraction/);
    rejects('R/2024-01-01T00:00:00Z/1D', /the duration must be an ISO 8601 duration/);
    rejects('R/2024-01-01T00:00:00Z/P99999999999D', /too long/);
  });

  it('R0 and other repetition mistakes are refused', () => {
    rejects('R0/2024-01-01T00:00:00Z/PT1M', /R0 never runs/);
    rejects('R-1/2024-01-01T00:00:00Z/PT1M', /repeating interval starts with R\/ or Rn\//);
    rejects('Rx/2024-01-01T00:00:00Z/PT1M', /repeating interval starts with R\/ or Rn\//);
    rejects('R99999999999999999999/2024-01-01T00:00:00Z/PT1M', /repetition count .* too large/);
  });

  it('the wrong number of parts, two dates or two durations are refused', () => {
    rejects(
      'R/2024-01-01T00:00:00Z',
      /three parts, R\[n\]\/<start>\/<duration> or R\[n\]\/<duration>\/<end>/,
    );
    rejects('R/2024-01-01T00:00:00Z/PT1M/PT1M', /three parts/);
    rejects('R/2024-01-01T00:00:00Z/2024-02-01T00:00:00Z', /R\/<start>\/<end> is not supported/);
    rejects('R/PT1M/PT1M', /needs a date-time/);
    rejects('PT5M', /a duration alone has no start; write R\/<start>\/PT5M/);
  });

  it('an unknown zone, a zone without a schedule, or two different zones are refused', () => {
    rejects(
      'TZ=Mars/Base 0 3 * * *',
      /TZ=Mars\/Base is not a known time zone, expected an IANA zone such as TZ=Europe\/Berlin/,
    );
    rejects('CRON_TZ=Nowhere 0 3 * * *', /CRON_TZ=Nowhere is not a known time zone/);
    rejects('TZ= 0 3 * * *', /TZ= is not a known time zone/);
    rejects('TZ=Europe/Berlin', /must be followed by a schedule/);
    rejects(
      'R/2024-01-01T00:00:00[Mars/Base]/P1D',
      /unknown time zone \[Mars\/Base\], expected an IANA zone such as \[Europe\/Berlin\]/,
    );
    rejects(
      'TZ=Europe/Berlin R/2024-01-01T00:00:00[America/New_York]/P1D',
      /two time zones were given/,
    );
    rejects(
      'R/2024-07-01T00:00:00+01:00[Europe/Berlin]/P1D',
      /offset \+01:00 is not Europe\/Berlin's offset at that time \(\+02:00\)/,
    );
  });

  it('bad cron fields name the field and its range', () => {
    rejects('61 * * * *', /the minute field "61" has 61, expected 0-59/);
    rejects('* 24 * * *', /the hour field "24" has 24, expected 0-23/);
    rejects('* * 0 * *', /the day-of-month field "0" has 0, expected 1-31/);
    rejects('* * 32 * *', /the day-of-month field "32" has 32, expected 1-31/);
    rejects('* * * 13 *', /the month field "13" has 13, expected 1-12/);
    rejects('* * * * 8', /the day-of-week field "8" has 8, expected 0-7/);
    rejects('60 * * * * *', /the second field "60" has 60, expected 0-59/);
    rejects('*/0 * * * *', /the minute field "\*\/0" has step 0, expected 1 or more/);
    rejects('1-70 * * * *', /has 70, expected 0-59/);
    rejects('a b c d e', /illegal characters.*cron expression has 5 fields/);
    rejects('5/5 * * * *', /stepping with numeric prefix/);
  });

  it('the wrong number of cron fields, a date that never comes, and unknown macros are refused', () => {
    rejects(
      '* * * *',
      /cron expression has 5 fields "minute hour day-of-month month day-of-week" .* got 4/,
    );
    rejects('* * * * * * *', /got 7/);
    rejects('0 0 30 2 *', /never matches a date/);
    rejects('0 0 31 4 *', /never matches a date/);
    rejects('@reboot', /@reboot has no meaning for CronQ/);
    rejects('@often', /unknown macro @often; a cron expression has 5 fields/);
  });

  it('a non-string is refused with a ScheduleSyntaxError too', () => {
    assert.throws(() => parseSchedule(42 as unknown as string), ScheduleSyntaxError);
  });
});
