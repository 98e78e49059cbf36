import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GiveWay, MAX_YIELD_MS, QUIET_TO_RESET_MS } from '../../src/results/notify/give-way';

/**
 * When the notification sender waits for the results
 * (src/results/notify/give-way.ts): storing a burst comes first, but
 * results busy nearly all the time never hold sending back for longer
 * than MAX_YIELD_MS.
 */

/** Ask every `step` ms from `from` to `to` (exclusive); the answers. */
function observe(g: GiveWay, from: number, to: number, step: number, busy: boolean): boolean[] {
  const out: boolean[] = [];
  for (let t = from; t < to; t += step) out.push(g.shouldWait(busy, t));
  return out;
}

describe('the sender gives way to the results', () => {
  test('a burst is stored first: the sender waits while results are busy, and sends once they are quiet', () => {
    const g = new GiveWay();
    assert.ok(observe(g, 0, 2000, 50, true).every(Boolean), 'waits through a 2 s burst');
    assert.equal(g.shouldWait(false, 2050), false, 'sends once quiet');
  });

  test('a sustained load holds sending back only for its first MAX_YIELD_MS', () => {
    const g = new GiveWay();
    const answers = observe(g, 0, 20_000, 50, true);
    const waited = answers.filter(Boolean).length * 50;
    assert.equal(waited, MAX_YIELD_MS);
    assert.ok(
      answers.slice(MAX_YIELD_MS / 50).every((w) => !w),
      'then sends all along',
    );
  });

  test('moments of quiet between batches do not start a new spell; a second of quiet does', () => {
    const g = new GiveWay();
    // Busy 4.9 s, quiet 0.1 s, over and over: a fresh 5 s at each gap would
    // let the sender run once every 5 s.
    let waitedAfterFirstSpell = 0;
    for (let t = 0; t < 60_000; t += 50) {
      const busy = t % 5000 < 4900;
      if (g.shouldWait(busy, t) && t >= MAX_YIELD_MS) waitedAfterFirstSpell += 50;
    }
    assert.equal(waitedAfterFirstSpell, 0);
    observe(g, 60_000, 60_000 + QUIET_TO_RESET_MS + 50, 50, false);
    assert.equal(
      g.shouldWait(true, 61_100),
      true,
      'after a second of quiet, a new burst goes first again',
    );
  });

  test('for any pattern: two waits with no second of quiet between them are less than MAX_YIELD_MS apart', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 1500 })), { maxLength: 300 }),
        (steps) => {
          const g = new GiveWay();
          let t = 0;
          let firstWait: number | null = null;
          let quietFrom: number | null = null;
          for (const [busy, dt] of steps) {
            t += dt;
            const wait = g.shouldWait(busy, t);
            if (!busy) {
              quietFrom ??= t;
              if (t - quietFrom >= QUIET_TO_RESET_MS) firstWait = null;
            } else quietFrom = null;
            if (wait) {
              firstWait ??= t;
              assert.ok(t - firstWait < MAX_YIELD_MS, `waited at ${t}, first at ${firstWait}`);
            }
            if (!busy) assert.equal(wait, false, 'never waits for quiet results');
          }
        },
      ),
    );
  });
});
