/**
 * The claim's rules as a pure function (no database): what one claim does
 * to one job row at the database's "now". Kept beside the injector's
 * integration tests, which exercise the same rules end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planClaim, type DueJobRow } from '../../src/injector/plan';
import { secondsToInterval } from '../../src/core/jobs';

const T0 = new Date('2024-03-01T12:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
let n = 0;
const ids = () => `run${String(++n).padStart(29, '0')}`;

function job(over: Partial<DueJobRow>): DueJobRow {
  return {
    id: 7,
    name: 'nightly',
    command: 'echo hi',
    routing_key: 'default',
    schedule: `R/${T0.toISOString()}/PT1S`,
    interval: null,
    next_run: T0,
    run_now: 0,
    timeout: null,
    ended_at: null,
    schedule_error: null,
    ...over,
  };
}

test('a due job runs for its next_run, and next_run moves to the first occurrence strictly after now', () => {
  const p = planClaim(job({}), at(20), ids);
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.scheduledFor.getTime(), T0.getTime());
  assert.equal(p.runs[0]!.trigger, 'schedule');
  assert.equal(p.runs[0]!.missed, 0);
  assert.equal(p.update.nextRun!.getTime(), at(1000).getTime());
  assert.equal(p.update.clearRunNow, false);
});

test('occurrences that came due while the job waited are skipped and counted, never run in a burst', () => {
  const p = planClaim(job({}), at(10_500), ids);
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.missed, 10); // +1 s ... +10 s
  assert.equal(p.update.nextRun!.getTime(), at(11_000).getTime());
});

test('a ten-year outage of a PT1S job is planned at once, with the skipped occurrences counted', () => {
  const now = new Date('2034-03-01T12:00:00.500Z');
  const started = performance.now();
  const p = planClaim(job({}), now, ids);
  assert.ok(performance.now() - started < 100);
  assert.equal(p.runs[0]!.missed, Math.floor((now.getTime() - T0.getTime()) / 1000));
  assert.equal(p.update.nextRun!.getTime(), new Date('2034-03-01T12:00:01.000Z').getTime());
});

test('a job is not due at the very millisecond of next_run (next_run < now, strictly)', () => {
  const p = planClaim(job({}), T0, ids);
  assert.equal(p.runs.length, 0);
  assert.equal(p.update.nextRun, T0);
});

test('the last occurrence of an Rn schedule runs, then the job ends: ended_at set, next_run cleared', () => {
  const p = planClaim(
    job({ schedule: `R3/${T0.toISOString()}/PT1S`, next_run: at(2000) }),
    at(2001),
    ids,
  );
  assert.equal(p.runs.length, 1);
  assert.equal(p.update.nextRun, null);
  assert.equal(p.update.endedAt!.getTime(), at(2001).getTime());
});

test('missed occurrences of a bounded schedule are counted only up to its end', () => {
  const p = planClaim(job({ schedule: `R3/${T0.toISOString()}/PT1S` }), at(60_000), ids);
  assert.equal(p.runs[0]!.missed, 2);
  assert.equal(p.update.nextRun, null);
});

test('run_now adds a manual run at now and clears the flag without moving next_run', () => {
  const later = at(3600_000);
  const p = planClaim(job({ run_now: 1, next_run: later }), at(5), ids);
  assert.deepEqual(
    p.runs.map((r) => [r.trigger, r.scheduledFor.getTime()]),
    [['manual', at(5).getTime()]],
  );
  assert.equal(p.update.clearRunNow, true);
  assert.equal(p.update.nextRun, later);
});

test('a job both due and flagged run_now gets its scheduled run and a manual one', () => {
  const p = planClaim(job({ run_now: 1 }), at(30), ids);
  assert.deepEqual(
    p.runs.map((r) => r.trigger),
    ['schedule', 'manual'],
  );
  assert.notEqual(p.runs[0]!.runId, p.runs[1]!.runId);
});

test('an unreadable schedule records schedule_error and creates no scheduled run; run_now still runs it', () => {
  const p = planClaim(job({ schedule: 'whenever', run_now: 1 }), at(30), ids);
  assert.match(p.newScheduleError!, /whenever/);
  assert.equal(p.update.scheduleError, p.newScheduleError);
  assert.deepEqual(
    p.runs.map((r) => r.trigger),
    ['manual'],
  );
});

test('an ended job is never due, but run_now still runs it by hand', () => {
  const p = planClaim(job({ ended_at: at(-1000), next_run: null, run_now: 1 }), at(30), ids);
  assert.deepEqual(
    p.runs.map((r) => r.trigger),
    ['manual'],
  );
  assert.equal(p.update.endedAt!.getTime(), at(-1000).getTime());
});

test('a job of an adopted Python cronq database (no schedule text, interval 60 s) keeps its period', () => {
  const p = planClaim(job({ schedule: null, interval: secondsToInterval(60) }), at(90_000), ids);
  assert.equal(p.runs[0]!.scheduledFor.getTime(), T0.getTime());
  assert.equal(p.runs[0]!.missed, 1);
  assert.equal(p.update.nextRun!.getTime(), at(120_000).getTime());
});

test('a job with neither schedule nor interval is skipped with a reason', () => {
  const p = planClaim(job({ schedule: null, interval: null }), at(30), ids);
  assert.equal(p.runs.length, 0);
  assert.match(p.newScheduleError!, /no schedule/);
});

test('the run carries routing key (default when empty), timeout (none when 0) and name', () => {
  const p = planClaim(job({ routing_key: '  ', timeout: 0 }), at(30), ids);
  assert.equal(p.runs[0]!.routingKey, 'default');
  assert.equal(p.runs[0]!.timeoutSeconds, null);
  const q = planClaim(job({ routing_key: 'slow', timeout: 30 }), at(30), ids);
  assert.equal(q.runs[0]!.routingKey, 'slow');
  assert.equal(q.runs[0]!.timeoutSeconds, 30);
});

test('with a lead, an occurrence less than the lead ahead is claimed early, and next_run moves past it', () => {
  const p = planClaim(job({}), at(-300), ids, 500);
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.scheduledFor.getTime(), T0.getTime());
  assert.equal(p.runs[0]!.missed, 0);
  assert.equal(p.update.nextRun!.getTime(), at(1000).getTime());
});

test('with a lead, an occurrence further ahead than the lead is not due yet', () => {
  const p = planClaim(job({}), at(-600), ids, 500);
  assert.equal(p.runs.length, 0);
  assert.equal(p.update.nextRun!.getTime(), T0.getTime());
  // Exactly the lead ahead is not due either (next_run < now + lead, strictly).
  assert.equal(planClaim(job({}), at(-500), ids, 500).runs.length, 0);
});

test('with a lead, the last occurrence of a bounded schedule claimed early ends the job', () => {
  const p = planClaim(job({ schedule: `R1/${T0.toISOString()}/PT1S` }), at(-200), ids, 500);
  assert.equal(p.runs.length, 1);
  assert.equal(p.update.nextRun, null);
  assert.ok(p.update.endedAt);
});

test('property: claims at any times with any lead run each occurrence once, in order, never more than the lead ahead', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5000 }),
      fc.constantFrom(1000, 2500, 60_000),
      fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 60 }),
      (lead, periodMs, steps) => {
        let row = job({ schedule: `R/${T0.toISOString()}/PT${periodMs / 1000}S` });
        let now = T0.getTime() - 6000;
        const claimed: number[] = [];
        for (const step of steps) {
          now += step;
          const p = planClaim(row, new Date(now), ids, lead);
          for (const r of p.runs) {
            assert.ok(r.scheduledFor.getTime() < now + lead, 'claimed further ahead than the lead');
            claimed.push(r.scheduledFor.getTime());
          }
          if (p.runs.length > 0 && p.update.nextRun !== null) {
            // After a claim, next_run is past both now and the occurrence just claimed.
            assert.ok(p.update.nextRun.getTime() > now, 'next_run is not after now');
            assert.ok(p.update.nextRun.getTime() > p.runs[0]!.scheduledFor.getTime());
          }
          row = { ...row, next_run: p.update.nextRun, ended_at: p.update.endedAt };
        }
        for (let i = 1; i < claimed.length; i += 1)
          assert.ok(claimed[i]! > claimed[i - 1]!, 'an occurrence ran twice or out of order');
        for (const c of claimed) assert.equal((c - T0.getTime()) % periodMs, 0);
      },
    ),
    { numRuns: 1000 },
  );
});

test('a schedule whose next occurrence lies past 9999-12-31 runs its due occurrence and ends, like an exhausted Rn/', () => {
  const p = planClaim(
    job({ schedule: `R/${T0.toISOString()}/P8000Y`, next_run: T0 }),
    at(1000),
    ids,
  );
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.scheduledFor.getTime(), T0.getTime());
  assert.equal(p.update.nextRun, null);
  assert.equal(p.update.endedAt?.getTime(), at(1000).getTime());
  assert.equal(p.update.scheduleError, null);
});

test('a next_run holding no valid date (a zero DATETIME) sets schedule_error instead of being rewritten silently', () => {
  const p = planClaim(job({ next_run: new Date(Number.NaN) }), at(0), ids);
  assert.equal(p.runs.length, 0);
  assert.match(p.update.scheduleError ?? '', /no valid date/);
  assert.equal(p.newScheduleError, p.update.scheduleError);
});

test('a manual run still goes out for a job whose schedule cannot be read', () => {
  const p = planClaim(job({ schedule: 'nonsense', run_now: 1 }), at(1000), ids);
  assert.deepEqual(
    p.runs.map((r) => r.trigger),
    ['manual'],
  );
  assert.match(p.update.scheduleError ?? '', /nonsense/);
});

test('secondsToInterval leaves the original interval column NULL for a period it cannot hold', () => {
  assert.equal(secondsToInterval(8_000_000_000_000), null);
  assert.equal(secondsToInterval(60)?.toISOString(), '1970-01-01T00:01:00.000Z');
});
