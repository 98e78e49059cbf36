/**
 * The job policies the claim applies (src/injector/plan.ts, admit.ts), as
 * pure decisions: pause and enabled, catch_up, overlap forbid and the
 * starting deadline. The integration tests (injector-overlap, -catchup,
 * -pause, -retry) run the same rules with real daemons.
 */
import { at, dueJob, ids, T0 } from '../helpers/due-job';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planClaim } from '../../src/injector/plan';
import { waitsForItsOccurrence } from '../../src/injector/admit';
import { policiesOfRow } from '../../src/core/policies/row';
import { buildJobMessage, parseJobMessage } from '../../src/core/messages';

const job = dueJob;

test('a paused job is not due and its next_run stays; a manual run still goes out', () => {
  const p = planClaim(job({ paused_at: at(-60_000), run_now: 1 }), at(5_500), ids);
  assert.deepEqual(
    p.runs.map((r) => r.trigger),
    ['manual'],
  );
  assert.equal(p.update.nextRun!.getTime(), T0.getTime());
  assert.equal(p.recorded.length, 0);
});

test('a disabled job is not due; a manual run still goes out', () => {
  assert.equal(planClaim(job({ enabled: 0 }), at(5_500), ids).runs.length, 0);
  assert.equal(planClaim(job({ enabled: false, run_now: 1 }), at(10), ids).runs.length, 1);
});

test('catch_up once (the default) is the original rule: one run for the oldest, the rest counted', () => {
  const p = planClaim(job({}, { catch_up: 'once' }), at(5_500), ids);
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.scheduledFor.getTime(), T0.getTime());
  assert.equal(p.runs[0]!.missed, 5);
  assert.equal(p.recorded.length, 0);
  assert.equal(p.update.nextRun!.getTime(), at(6_000).getTime());
});

test('catch_up skip after an outage runs none and records one missed run with the count', () => {
  const p = planClaim(job({}, { catch_up: 'skip' }), at(5_500), ids);
  assert.equal(p.runs.length, 0);
  assert.equal(p.recorded.length, 1);
  const m = p.recorded[0]!;
  assert.equal(m.status, 'missed');
  assert.equal(m.missed, 6); // T0 ... T0+5 s
  assert.equal(m.scheduledFor.getTime(), T0.getTime());
  assert.match(m.reason, /^6 occurrences missed while nothing could run them \(catch_up: skip\)$/);
  assert.equal(p.update.nextRun!.getTime(), at(6_000).getTime());
});

test('catch_up skip in normal operation (only the one occurrence due) runs it', () => {
  const p = planClaim(job({}, { catch_up: 'skip' }), at(20), ids);
  assert.equal(p.runs.length, 1);
  assert.equal(p.recorded.length, 0);
});

test('catch_up all runs each occurrence up to the limit, oldest first, and records the rest as missed', () => {
  const p = planClaim(job({}, { catch_up: 'all', catch_up_limit: 3 }), at(5_500), ids);
  assert.deepEqual(
    p.runs.map((r) => r.scheduledFor.getTime() - T0.getTime()),
    [0, 1000, 2000],
  );
  assert.ok(p.runs.every((r) => r.missed === 0 && r.trigger === 'schedule'));
  assert.equal(p.recorded.length, 1);
  // The first occurrence not run: unique for the job.
  assert.equal(p.recorded[0]!.scheduledFor.getTime(), at(3000).getTime());
  assert.equal(p.recorded[0]!.missed, 3);
  assert.match(p.recorded[0]!.reason, /catch_up: all, at most 3/);
  assert.equal(p.update.nextRun!.getTime(), at(6_000).getTime());
  assert.equal(new Set(p.runs.map((r) => r.runId)).size, 3);
});

test('catch_up all within the limit runs every missed occurrence and records nothing', () => {
  const p = planClaim(job({}, { catch_up: 'all' }), at(2_500), ids);
  assert.equal(p.runs.length, 3);
  assert.equal(p.recorded.length, 0);
});

test('overlap forbid: while the active run is running, the occurrence is recorded skipped, naming it', () => {
  const active = 'a'.repeat(32);
  const p = planClaim(
    job({ active_run_id: active, active_status: 'running' }, { overlap: 'forbid' }),
    at(20),
    ids,
  );
  assert.equal(p.runs.length, 0);
  assert.equal(p.recorded.length, 1);
  assert.equal(p.recorded[0]!.status, 'skipped');
  assert.equal(p.recorded[0]!.reason, `skipped: run ${active} was still running`);
  assert.equal(p.recorded[0]!.waitedFor, active);
  assert.equal(p.update.activeRunId, undefined, 'the active run stays');
  // The schedule moves on as for a run.
  assert.equal(p.update.nextRun!.getTime(), at(1000).getTime());
});

test('overlap forbid waits for the occurrence: claimed ahead of it, a going run leaves the job for later', () => {
  const forbid = policiesOfRow({ policies: JSON.stringify({ overlap: 'forbid' }), enabled: 1 });
  const allow = policiesOfRow({ policies: null, enabled: 1 });
  const going = {
    active_run_id: 'a'.repeat(32),
    active_status: 'running',
    next_run: at(300),
    run_now: 0,
  };
  // Ahead of the occurrence, behind a going run: wait.
  assert.equal(waitsForItsOccurrence(going, forbid, at(0)), true);
  assert.equal(waitsForItsOccurrence({ ...going, active_status: 'queued' }, forbid, at(0)), true);
  // At or after the occurrence the rule is decided (skipped), not put off again.
  assert.equal(waitsForItsOccurrence(going, forbid, at(300)), false);
  assert.equal(waitsForItsOccurrence(going, forbid, at(301)), false);
  // A final or vanished active run, no active run, allow, or a run-now flag: planned now.
  for (const s of ['succeeded', 'failed', 'timed_out', 'lost', 'skipped', 'missed', null])
    assert.equal(
      waitsForItsOccurrence({ ...going, active_status: s }, forbid, at(0)),
      false,
      String(s),
    );
  assert.equal(waitsForItsOccurrence({ ...going, active_run_id: null }, forbid, at(0)), false);
  assert.equal(waitsForItsOccurrence(going, allow, at(0)), false);
  assert.equal(waitsForItsOccurrence({ ...going, run_now: 1 }, forbid, at(0)), false);
});

test('overlap forbid: a final or vanished active run is cleared and the new run becomes active', () => {
  for (const status of ['succeeded', 'failed', 'timed_out', 'lost', 'skipped', 'missed', null]) {
    const p = planClaim(
      job({ active_run_id: 'b'.repeat(32), active_status: status }, { overlap: 'forbid' }),
      at(20),
      ids,
    );
    assert.equal(p.runs.length, 1, String(status));
    assert.equal(p.update.activeRunId, p.runs[0]!.runId);
  }
  const none = planClaim(job({}, { overlap: 'forbid' }), at(20), ids);
  assert.equal(none.update.activeRunId, none.runs[0]!.runId);
});

test('overlap forbid: a final active run is cleared even when nothing is created', () => {
  const p = planClaim(
    job(
      { next_run: at(60_000), active_run_id: 'c'.repeat(32), active_status: 'failed' },
      { overlap: 'forbid' },
    ),
    at(20),
    ids,
  );
  assert.equal(p.runs.length, 0);
  assert.equal(p.update.activeRunId, null);
});

test('overlap forbid with catch_up all: one run per claim, the others skipped behind it', () => {
  const p = planClaim(job({}, { overlap: 'forbid', catch_up: 'all' }), at(3_500), ids);
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.scheduledFor.getTime(), T0.getTime());
  const skipped = p.recorded.filter((r) => r.status === 'skipped');
  assert.equal(skipped.length, 3);
  for (const s of skipped)
    assert.equal(s.reason, `skipped: run ${p.runs[0]!.runId} was still queued`);
  assert.equal(p.update.activeRunId, p.runs[0]!.runId);
});

test('overlap forbid applies to a manual run, on a paused job too', () => {
  const p = planClaim(
    job(
      { run_now: 1, paused_at: at(-1), active_run_id: 'd'.repeat(32), active_status: 'queued' },
      { overlap: 'forbid' },
    ),
    at(20),
    ids,
  );
  assert.equal(p.runs.length, 0);
  assert.deepEqual(
    p.recorded.map((r) => [r.trigger, r.status]),
    [['manual', 'skipped']],
  );
  assert.equal(p.update.clearRunNow, true);
  const both = planClaim(job({ run_now: 1 }, { overlap: 'forbid' }), at(20), ids);
  assert.deepEqual(
    both.runs.map((r) => r.trigger),
    ['schedule'],
  );
  assert.deepEqual(
    both.recorded.map((r) => [r.trigger, r.status]),
    [['manual', 'skipped']],
  );
});

test('overlap allow leaves active_run_id alone and runs whatever it holds', () => {
  const p = planClaim(
    job({ active_run_id: 'e'.repeat(32), active_status: 'running' }),
    at(20),
    ids,
  );
  assert.equal(p.runs.length, 1);
  assert.equal(p.update.activeRunId, undefined);
});

test('starting deadline: an occurrence later than its deadline at claim is recorded missed', () => {
  const p = planClaim(job({}, { starting_deadline: 'PT2S' }), at(2_500), ids);
  assert.equal(p.runs.length, 0);
  assert.equal(p.recorded.length, 1);
  const m = p.recorded[0]!;
  assert.equal(m.status, 'missed');
  assert.equal(m.missed, 3, 'itself and the two occurrences counted on it');
  assert.match(
    m.reason,
    /^not started within its starting deadline of 2 s \(500 ms late when claimed\)$/,
  );
});

test('starting deadline: a run in time carries start_by = scheduled_for + the deadline', () => {
  const p = planClaim(job({}, { starting_deadline: 'PT2S' }), at(1_999), ids);
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.startBy!.getTime(), at(2000).getTime());
  const body = JSON.parse(
    JSON.stringify(buildJobMessage({ ...p.runs[0]!, name: 'x', startBy: p.runs[0]!.startBy })),
  );
  assert.equal(body.start_by, at(2000).toISOString());
  assert.equal(planClaim(job({}), at(20), ids).runs[0]!.startBy, undefined);
});

test('starting deadline with catch_up all: the late ones are missed, those in time run', () => {
  const p = planClaim(job({}, { catch_up: 'all', starting_deadline: 'PT2S' }), at(3_500), ids);
  assert.deepEqual(
    p.runs.map((r) => r.scheduledFor.getTime() - T0.getTime()),
    [2000, 3000],
  );
  assert.deepEqual(
    p.recorded.map((r) => [r.status, r.scheduledFor.getTime() - T0.getTime()]),
    [
      ['missed', 0],
      ['missed', 1000],
    ],
  );
});

test('policiesOfRow: unparsable or wrong text reads as the defaults, enabled from its column', () => {
  assert.equal(policiesOfRow({ policies: '{nope', enabled: 1 }).overlap, 'allow');
  assert.equal(policiesOfRow({ policies: '[1]', enabled: 0 }).enabled, false);
  assert.equal(policiesOfRow({ policies: '{"overlap":"sometimes"}', enabled: 1 }).overlap, 'allow');
  assert.equal(
    policiesOfRow({ policies: '{"overlap":"forbid"}', enabled: true }).overlap,
    'forbid',
  );
  assert.equal(policiesOfRow({ policies: null, enabled: 1 }).catchUp, 'once');
});

test('job message start_by: absent without a deadline, written and read back when set', () => {
  const base = {
    runId: 'f'.repeat(32),
    jobId: 1,
    name: 'j',
    command: 'true',
    timeoutSeconds: null,
    scheduledFor: T0,
    trigger: 'schedule' as const,
  };
  assert.equal('start_by' in buildJobMessage(base), false);
  assert.equal('attempt' in buildJobMessage({ ...base, attempt: 1 }), false);
  assert.equal(buildJobMessage({ ...base, trigger: 'retry', attempt: 2 }).attempt, 2);
  const now = T0.getTime();
  const msg = (start_by: unknown) =>
    parseJobMessage(JSON.stringify({ ...buildJobMessage(base), start_by }), { now });
  assert.equal(msg(at(5000).toISOString()).startBy, at(5000).getTime());
  assert.equal(msg(undefined).startBy, null);
  // Unreadable start_by: test/unit/messages-policies.test.ts (a malformed message).
});
