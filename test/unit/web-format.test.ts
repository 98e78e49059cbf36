/**
 * How the admin writes durations and a run's duration (src/web/format.ts),
 * and the last occurrence of a schedule that ends, which the job page
 * names once the schedule has ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { durationText, runDurationText } from '../../src/web/format';
import { parseSchedule } from '../../src/core/schedule';

test('durationText leaves out a zero smaller unit: "1 min", "2 h", not "1 min 0 s"', () => {
  assert.equal(durationText(60_000), '1 min');
  assert.equal(durationText(61_000), '1 min 1 s');
  assert.equal(durationText(3_600_000), '1 h');
  assert.equal(durationText(7_260_000), '2 h 1 min');
  assert.equal(durationText(1_500), '1.5 s');
  assert.equal(durationText(250), '250 ms');
  assert.equal(durationText(null), '—');
  assert.equal(durationText(-1), '—');
});

test('durationText never writes a zero part, for any duration', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 10 * 86_400_000 }), (ms) => {
      const text = durationText(ms);
      assert.doesNotMatch(text, /(^|\s)0 (s|min)$/, `${ms} ms -> ${text}`);
    }),
  );
});

test('runDurationText: run_time when recorded, else start to finish (a lost run), else —', () => {
  const t = new Date('2024-03-01T12:00:00Z');
  const later = (ms: number) => new Date(t.getTime() + ms);
  assert.equal(
    runDurationText({ run_time: 2.5, started_at: t, finished_at: later(9000) }),
    '2.5 s',
  );
  assert.equal(
    runDurationText({ run_time: null, started_at: t, finished_at: later(125_000) }),
    '2 min 5 s',
  );
  assert.equal(runDurationText({ run_time: null, started_at: null, finished_at: later(1) }), '—');
  assert.equal(runDurationText({ run_time: null, started_at: t, finished_at: null }), '—');
});

test('a schedule that ends knows its last occurrence; one that repeats for ever has none', () => {
  assert.equal(
    parseSchedule('R3/2024-03-01T00:00:00Z/PT1H').last()?.toISOString(),
    '2024-03-01T02:00:00.000Z',
  );
  assert.equal(
    parseSchedule('R2/2024-01-31T00:00:00Z/P1M').last()?.toISOString(),
    '2024-02-29T00:00:00.000Z',
  );
  assert.equal(parseSchedule('R/2024-03-01T00:00:00Z/PT1H').last(), null);
  assert.equal(parseSchedule('0 3 * * *').last(), null);
});
