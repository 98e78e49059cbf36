/**
 * The pure parts of notifying runs the injector records missed: which of a
 * claim's recorded runs get a notice (src/injector/run-rows.ts), and what
 * the results consumer makes of the notices it takes
 * (src/results/notify/missed.ts). test/integration/notify-missed.test.ts
 * runs them with a real injector, results consumers and a receiver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { at, dueJob, ids } from '../helpers/due-job';
import { planClaim, type RecordedRun } from '../../src/injector/plan';
import { missedRuns } from '../../src/injector/run-rows';
import { finalsOfNotices, type RunNotice } from '../../src/results/notify/missed';

test('a claim gives a notice to each missed run it records (catch-up and starting deadline), not to a skipped one', () => {
  const skip = planClaim(dueJob({ id: 1 }, { catch_up: 'skip' }), at(5_500), ids);
  const late = planClaim(dueJob({ id: 2 }, { starting_deadline: 'PT2S' }), at(5_500), ids);
  const forbid = planClaim(
    dueJob(
      { id: 3, active_run_id: 'a'.repeat(32), active_status: 'running' },
      { overlap: 'forbid' },
    ),
    at(500),
    ids,
  );
  const normal = planClaim(dueJob({ id: 4 }), at(500), ids);
  assert.deepEqual(
    forbid.recorded.map((r) => r.status),
    ['skipped'],
  );
  const recorded = [skip, late, forbid, normal].flatMap((p) => p.recorded);
  const noticed = missedRuns(recorded);
  assert.deepEqual(
    noticed.map((r) => [r.jobId, r.status]),
    [
      [1, 'missed'],
      [2, 'missed'],
    ],
  );
  assert.deepEqual(missedRuns(normal.recorded), [], 'nothing missed: no notice, no statement');
});

test('a run listed twice (a batch retried row by row) gets one notice', () => {
  const run: RecordedRun = {
    runId: 'r'.repeat(32),
    jobId: 1,
    jobName: 'a',
    routingKey: 'default',
    scheduledFor: at(0),
    trigger: 'schedule',
    status: 'missed',
    reason: 'x',
    missed: 1,
  };
  assert.equal(missedRuns([run, { ...run }]).length, 1);
});

test("notices become `missed` finals, oldest first, under the job's current name; a removed job's give none", () => {
  const notice = (run: string, job: number, ms: number): RunNotice => ({
    run_id: run.repeat(32),
    job_id: job,
    created_at: at(ms),
  });
  const finals = finalsOfNotices(
    [notice('c', 5, 2000), notice('b', 9, 0), notice('a', 5, 1000), notice('d', 5, 1000)],
    new Map([[5, { name: 'backup' }]]),
  );
  assert.deepEqual(finals, [
    { runId: 'a'.repeat(32), jobId: 5, status: 'missed', jobName: 'backup' },
    { runId: 'd'.repeat(32), jobId: 5, status: 'missed', jobName: 'backup' },
    { runId: 'c'.repeat(32), jobId: 5, status: 'missed', jobName: 'backup' },
  ]);
});
