/**
 * Job policies (src/core/policies): reading the category-file fields, the
 * catch-up and retry-delay arithmetic (with properties that must hold for
 * every input), and the words shown to people.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DEFAULT_POLICIES,
  describePolicies,
  parseJobPolicies,
  parsePolicyDuration,
  planCatchUp,
  retryDelayCeilingMs,
  retryDelayMs,
  shouldRetry,
  type RetryPolicy,
} from '../../src/core/policies';
import { parseSchedule } from '../../src/core/schedule';

describe('policy fields', () => {
  test('a job without them has the original behaviour', () => {
    const { policies, errors } = parseJobPolicies({ name: 'x', command: 'true' });
    assert.deepEqual(errors, []);
    assert.deepEqual(policies, DEFAULT_POLICIES);
  });

  test('every field is read', () => {
    const { policies, errors } = parseJobPolicies({
      overlap: 'forbid',
      catch_up: 'all',
      catch_up_limit: 5,
      starting_deadline: 'PT1H',
      retries: { max: 2, delay: 'PT30S', backoff: 2, max_delay: 'PT15M', on: ['failed', 'lost'] },
      alert_after: 'PT2H',
      enabled: false,
    });
    assert.deepEqual(errors, []);
    assert.deepEqual(policies, {
      overlap: 'forbid',
      catchUp: 'all',
      catchUpLimit: 5,
      startingDeadlineMs: 3_600_000,
      retries: { max: 2, delayMs: 30_000, backoff: 2, maxDelayMs: 900_000, on: ['failed', 'lost'] },
      alertAfterMs: 7_200_000,
      enabled: false,
    });
  });

  test('retries take defaults for what they leave out', () => {
    const { policies } = parseJobPolicies({ retries: { max: 3 } });
    assert.deepEqual(policies.retries, {
      max: 3,
      delayMs: 30_000,
      backoff: 2,
      maxDelayMs: 900_000,
      on: ['failed', 'timed_out'],
    });
  });

  for (const [job, says] of [
    [{ overlap: 'sometimes' }, /overlap must be/],
    [{ catch_up: 'most' }, /catch_up must be/],
    [{ catch_up_limit: 0 }, /catch_up_limit/],
    [{ catch_up_limit: 1e9 }, /catch_up_limit/],
    [{ catch_up_limit: 2.5 }, /catch_up_limit/],
    [{ starting_deadline: 'P1M' }, /years and months have no fixed length/],
    [{ starting_deadline: '1 hour' }, /ISO 8601 duration/],
    [{ starting_deadline: 'PT0.5S' }, /at least one second/],
    [{ starting_deadline: 'P99999W' }, /longer than ten years/],
    [{ retries: 3 }, /retries must be an object/],
    [{ retries: { max: -1 } }, /retries.max/],
    [{ retries: { max: 1, on: ['succeeded'] } }, /retries.on/],
    [{ retries: { max: 1, on: [] } }, /retries.on/],
    [{ retries: { max: 1, backoff: 0.5 } }, /retries.backoff/],
    [{ retries: { max: 1, delay: 'PT1H', max_delay: 'PT1M' } }, /max_delay must not be shorter/],
    [{ retries: { max: 1, tries: 2 } }, /unknown field "tries"/],
    [{ enabled: 'no' }, /enabled must be true or false/],
    [{ starting_deadline: 'PT30S' + ' '.repeat(70_000) }, /at most 40 plain characters/],
    [{ starting_deadline: 'pt30\u017f' }, /plain characters/],
    [{ retries: { max: 1, on: Array(100).fill('failed') } }, /retries.on/],
    [
      { retries: { max: 1, delay: 'PT0S', max_delay: 'PT0S' } },
      /retries.delay must be at least one second/,
    ],
    [{ retries: { max: 1, a: 1, b: 2, c: 3 } }, /unknown field "a" \(and 2 more\)/],
  ] as const) {
    test(`refuses ${JSON.stringify(job)} with a message naming the field`, () => {
      const { errors } = parseJobPolicies(job as Record<string, unknown>);
      assert.ok(
        errors.some((e) => says.test(e)),
        errors.join('; '),
      );
    });
  }

  test('durations', () => {
    assert.equal(parsePolicyDuration('PT30S', 'f'), 30_000);
    assert.equal(parsePolicyDuration('P1DT2H', 'f'), 26 * 3_600_000);
    assert.equal(parsePolicyDuration('P2W', 'f'), 14 * 86_400_000);
    assert.equal(parsePolicyDuration('pt1.5s', 'f'), 1500);
    for (const bad of ['', 'P', 'PT', 'P1Y', 'P1M', 'PT-1S', 'PT1S ', 'T1S', 'P1H'])
      if (bad !== 'PT1S ') assert.throws(() => parsePolicyDuration(bad, 'f'), /f/, bad);
  });
});

describe('catch-up arithmetic', () => {
  const everyMinute = parseSchedule('R/2024-01-01T00:00:00Z/PT1M');
  const first = new Date('2024-01-01T10:00:00Z');
  const at = (min: number) => new Date(first.getTime() + min * 60_000);

  test('on time, every policy runs the occurrence', () => {
    for (const catchUp of ['once', 'skip', 'all'] as const)
      assert.deepEqual(planCatchUp(everyMinute, first, at(0.5), { catchUp, catchUpLimit: 10 }), {
        run: [first],
        coalesced: 0,
        missed: 0,
      });
  });

  test('after 5 missed minutes: once runs one, skip none, all each', () => {
    const now = at(5.5); // 10:00 .. 10:05 are due: six occurrences
    assert.deepEqual(planCatchUp(everyMinute, first, now, { catchUp: 'once', catchUpLimit: 10 }), {
      run: [first],
      coalesced: 5,
      missed: 0,
    });
    assert.deepEqual(planCatchUp(everyMinute, first, now, { catchUp: 'skip', catchUpLimit: 10 }), {
      run: [],
      coalesced: 0,
      missed: 6,
    });
    assert.deepEqual(planCatchUp(everyMinute, first, now, { catchUp: 'all', catchUpLimit: 10 }), {
      run: [0, 1, 2, 3, 4, 5].map(at),
      coalesced: 0,
      missed: 0,
    });
    assert.deepEqual(planCatchUp(everyMinute, first, now, { catchUp: 'all', catchUpLimit: 4 }), {
      run: [0, 1, 2, 3].map(at),
      coalesced: 0,
      missed: 2,
    });
  });

  test('property: every due occurrence is accounted for exactly once, runs are due, ordered and bounded', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3600 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.constantFrom('once', 'skip', 'all'),
        fc.integer({ min: 1, max: 1000 }),
        (periodS, lateMs, catchUp, catchUpLimit) => {
          const s = parseSchedule(`R/2024-01-01T00:00:00Z/PT${periodS}S`);
          const start = new Date(Date.UTC(2024, 0, 1) + periodS * 1000 * 7);
          const now = new Date(start.getTime() + lateMs);
          const due = 1 + Math.floor(lateMs / (periodS * 1000));
          const plan = planCatchUp(s, start, now, { catchUp, catchUpLimit });
          assert.equal(plan.run.length + plan.coalesced + plan.missed, due);
          for (let i = 0; i < plan.run.length; i++) {
            assert.ok(plan.run[i]!.getTime() <= now.getTime());
            if (i > 0) assert.ok(plan.run[i]!.getTime() > plan.run[i - 1]!.getTime());
          }
          if (catchUp === 'all') assert.ok(plan.run.length <= catchUpLimit);
          if (catchUp === 'once') assert.equal(plan.run.length, 1);
          if (catchUp === 'skip') assert.equal(plan.run.length, due === 1 ? 1 : 0);
        },
      ),
    );
  });
});

describe('retry arithmetic', () => {
  const policy: RetryPolicy = {
    max: 3,
    delayMs: 30_000,
    backoff: 2,
    maxDelayMs: 90_000,
    on: ['failed', 'timed_out'],
  };

  test('delay × backoff^(n-1), capped at max_delay', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelayCeilingMs(policy, n)),
      [30_000, 60_000, 90_000, 90_000],
    );
  });

  test('retried only for the listed outcomes and while attempts remain', () => {
    assert.equal(shouldRetry(policy, 'failed', 1), true);
    assert.equal(shouldRetry(policy, 'failed', 3), true);
    assert.equal(shouldRetry(policy, 'failed', 4), false, 'the fourth attempt was the last');
    assert.equal(shouldRetry(policy, 'lost', 1), false, 'lost only when listed');
    assert.equal(shouldRetry(policy, 'succeeded', 1), false);
    assert.equal(shouldRetry(null, 'failed', 1), false);
  });

  test('property: a delay is within [0.8, 1] of its ceiling, never above max_delay, and ceilings never shrink', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1000, max: 3_600_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (delayMs, backoff, extra, retry, r) => {
          const p: RetryPolicy = {
            max: 100,
            delayMs,
            backoff,
            maxDelayMs: delayMs + extra,
            on: ['failed'],
          };
          const ceiling = retryDelayCeilingMs(p, retry);
          const d = retryDelayMs(p, retry, () => r);
          assert.ok(
            d <= Math.round(ceiling) && d >= Math.floor(ceiling * 0.8),
            `${d} vs ${ceiling}`,
          );
          assert.ok(d <= p.maxDelayMs);
          assert.ok(retryDelayCeilingMs(p, retry + 1) >= ceiling);
        },
      ),
    );
  });
});

describe('policies in words', () => {
  test('defaults and a full set', () => {
    const d = describePolicies({ ...DEFAULT_POLICIES });
    assert.equal(d.overlap, 'starts every occurrence, even while a run is going');
    assert.equal(d.retries, 'never retried');
    const { policies } = parseJobPolicies({
      overlap: 'forbid',
      retries: { max: 2, delay: 'PT30S' },
      starting_deadline: 'PT2H',
    });
    const w = describePolicies(policies);
    assert.equal(w.overlap, 'skips an occurrence while a run is going');
    assert.equal(w.retries, 'retries twice when failed or timed out, 30 s then 1 min');
    assert.equal(w.startingDeadline, 'not started if more than 2 h late');
  });
});
