import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decide, decideOverdue, emptyState, type Send } from '../../src/core/notify/storm';
import { parseNotifyTargets, type NotifyTarget } from '../../src/core/notify/targets';

/** The no-storm rules (docs/notifications.md), for every sequence of outcomes. */

const HOUR = 3_600_000;
const target = (on: string[], repeat = 'PT1H'): NotifyTarget =>
  parseNotifyTargets([{ on, webhook: 'https://example.com/h', repeat_after: repeat }]).targets[0]!;

const outcome = fc.record({
  status: fc.constantFrom('succeeded', 'failed', 'timed_out', 'lost', 'missed', 'skipped'),
  retried: fc.boolean(),
  gapMs: fc.integer({ min: 0, max: 3 * HOUR }),
});

function play(
  seq: Array<{ status: string; retried: boolean; gapMs: number }>,
  targets: NotifyTarget[],
) {
  const state = emptyState();
  let at = 1_700_000_000_000;
  const log: Array<{ at: number; status: string; retried: boolean; sends: Send[] }> = [];
  for (const o of seq) {
    at += o.gapMs;
    const retried = o.retried && o.status !== 'succeeded' && o.status !== 'skipped';
    log.push({
      at,
      status: o.status,
      retried,
      sends: decide(state, { status: o.status, retried, at }, targets),
    });
  }
  return { state, log };
}

const FAILURES = ['failed', 'timed_out', 'lost', 'missed'];

describe('no storms', () => {
  test('recovered is sent once per failing streak, only after a final failure', () => {
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 60 }), (seq) => {
        const { log } = play(seq, [target(['failed', 'timed_out', 'lost', 'missed', 'recovered'])]);
        let failing = false;
        for (const step of log) {
          const recovered = step.sends.filter((s) => s.event === 'recovered');
          if (step.status === 'succeeded') {
            assert.equal(recovered.length, failing ? 1 : 0);
            failing = false;
          } else assert.equal(recovered.length, 0);
          if (FAILURES.includes(step.status) && !step.retried) failing = true;
        }
      }),
    );
  });

  test('a job that keeps failing notifies on its first failure, then at most once per repeat_after, counting the failures', () => {
    fc.assert(
      fc.property(
        fc.array(outcome, { maxLength: 60 }),
        fc.constantFrom('PT1M', 'PT1H', 'P1D'),
        (seq, repeat) => {
          const t = target(FAILURES, repeat);
          const { log } = play(seq, [t]);
          let lastSent: number | null = null;
          let streak = 0;
          for (const step of log) {
            const fails = step.sends.filter((s) => FAILURES.includes(s.event));
            if (step.status === 'succeeded') {
              lastSent = null;
              streak = 0;
              continue;
            }
            if (!FAILURES.includes(step.status) || step.retried) {
              assert.equal(fails.length, 0, 'a retried failure or a skip is not a final failure');
              continue;
            }
            streak += 1;
            const due: boolean = lastSent === null || step.at - lastSent >= t.repeatAfterMs;
            assert.equal(fails.length, due ? 1 : 0);
            if (due) {
              assert.equal(fails[0]!.failures, streak, 'says how many failures so far');
              lastSent = step.at;
            }
          }
        },
      ),
    );
  });

  test('with retries only targets listing retry hear of a retried failure', () => {
    fc.assert(
      fc.property(fc.array(outcome, { maxLength: 40 }), (seq) => {
        const { log } = play(seq, [target(['failed']), target(['retry'])]);
        for (const step of log) {
          const events = step.sends.map((s) => s.event);
          if (step.retried && FAILURES.includes(step.status)) assert.deepEqual(events, ['retry']);
          else assert.ok(!events.includes('retry'));
        }
      }),
    );
  });

  test('a target gets only the events its "on" lists', () => {
    fc.assert(
      fc.property(
        fc.array(outcome, { maxLength: 40 }),
        fc.subarray(['failed', 'timed_out', 'lost', 'missed', 'recovered', 'retry'], {
          minLength: 1,
        }),
        (seq, on) => {
          const { log } = play(seq, [target(on)]);
          for (const step of log) for (const s of step.sends) assert.ok(on.includes(s.event));
        },
      ),
    );
  });

  test('overdue is sent once until a success clears it, then recovered', () => {
    const t = target(['overdue', 'recovered']);
    const state = emptyState();
    assert.equal(decideOverdue(state, 1000, [t]).length, 1);
    assert.equal(decideOverdue(state, 2000, [t]).length, 0, 'not again while overdue');
    const sends = decide(state, { status: 'succeeded', retried: false, at: 3000 }, [t]);
    assert.deepEqual(
      sends.map((s) => s.event),
      ['recovered'],
    );
    assert.equal(decideOverdue(state, 4000, [t]).length, 1, 'overdue again after a success');
  });
});
