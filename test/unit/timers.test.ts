import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { clampDelay, MAX_TIMER_MS, setLongTimeout } from '../../src/core/timers';

const TEN_YEARS_MS = 10 * 366 * 86_400_000;
/** The mocked Date stands in for the monotonic clock. */
const clock = () => Date.now();

describe('setLongTimeout', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());

  test('fires exactly at the requested time, never before, for every delay from 0 to 10 years', () => {
    // Node's mock timers keep the real overflow (a delay over 2^31-1 ms fires after 1 ms),
    // so a single setTimeout would fail here for every delay past 24.8 days.
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: TEN_YEARS_MS }),
          fc.integer({ min: MAX_TIMER_MS - 3, max: MAX_TIMER_MS * 3 + 3 }),
          fc.double({ min: 0, max: TEN_YEARS_MS, noNaN: true }),
        ),
        (ms) => {
          mock.timers.reset();
          mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
          let calls = 0;
          setLongTimeout(() => (calls += 1), ms, { clock });
          const due = Math.ceil(ms);
          if (due >= 1) {
            mock.timers.tick(due - 1);
            assert.equal(calls, 0, `fired before ${due} ms`);
            mock.timers.tick(1);
          } else {
            mock.timers.tick(0);
          }
          assert.equal(calls, 1, `did not fire at ${due} ms`);
          mock.timers.tick(MAX_TIMER_MS);
          assert.equal(calls, 1, 'fired only once');
        },
      ),
      { numRuns: 300 },
    );
  });

  test('30 days (the timeout that used to end jobs after 30 ms) does not fire early', () => {
    let fired = false;
    setLongTimeout(() => (fired = true), 2_592_000 * 1000, { clock });
    mock.timers.tick(30);
    assert.equal(fired, false);
    mock.timers.tick(2_592_000 * 1000 - 31);
    assert.equal(fired, false);
    mock.timers.tick(1);
    assert.equal(fired, true);
  });

  test('NaN, negative and -Infinity mean now; +Infinity means never', () => {
    const fired: string[] = [];
    for (const [label, ms] of [
      ['nan', NaN],
      ['neg', -5],
      ['-inf', -Infinity],
      ['inf', Infinity],
    ] as const) {
      setLongTimeout(() => fired.push(label), ms, { clock });
    }
    mock.timers.tick(0);
    assert.deepEqual(fired.sort(), ['-inf', 'nan', 'neg']);
    mock.timers.tick(TEN_YEARS_MS);
    assert.deepEqual(fired.sort(), ['-inf', 'nan', 'neg']);
  });

  test('cancel stops it at any link of the chain', () => {
    let calls = 0;
    const t = setLongTimeout(() => (calls += 1), MAX_TIMER_MS * 2.5, { clock });
    mock.timers.tick(MAX_TIMER_MS * 2);
    assert.equal(t.pending, true);
    t.cancel();
    assert.equal(t.pending, false);
    mock.timers.tick(MAX_TIMER_MS);
    assert.equal(calls, 0);
    const u = setLongTimeout(() => (calls += 1), 10, { clock });
    mock.timers.tick(10);
    assert.equal(u.pending, false);
    u.cancel();
    assert.equal(calls, 1);
  });
});

describe('clampDelay', () => {
  test('always a whole number of ms one setTimeout keeps, and never shorter than asked unless over the cap', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity)),
        (ms) => {
          const d = clampDelay(ms);
          assert.ok(Number.isInteger(d) && d >= 0 && d <= MAX_TIMER_MS, `${ms} -> ${d}`);
          if (Number.isFinite(ms) && ms > 0 && ms <= MAX_TIMER_MS) assert.equal(d, Math.ceil(ms));
          if (!(ms > 0)) assert.equal(d, 0);
          if (ms > MAX_TIMER_MS) assert.equal(d, MAX_TIMER_MS);
        },
      ),
    );
  });
});
