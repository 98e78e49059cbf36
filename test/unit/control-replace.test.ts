/**
 * overlap replace, the claim's decision (src/injector/admit.ts): a new
 * occurrence replaces the run still going (listed for the kill path) and
 * becomes the active run; a final or vanished active run is only cleared;
 * several occurrences in one claim create one run, the rest skipped.
 * And the runner's side: the kill's words, and the bounded memory of kills.
 */
import { at, dueJob, ids } from '../helpers/due-job';
import { OutputTail } from '../../src/runner/output-tail';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planClaim, type DueJobRow } from '../../src/injector/plan';
import { KilledRuns } from '../../src/runner/kills';
import { finishedResult, killedBeforeStartResult } from '../../src/runner/result-messages';
import { parseResultMessage } from '../../src/core/messages';

const job = (over: Partial<DueJobRow>): DueJobRow => dueJob(over, { overlap: 'replace' });

test('replace: a run still going is replaced by the new one, which becomes active', () => {
  for (const status of ['queued', 'running']) {
    const active = 'a'.repeat(32);
    const p = planClaim(job({ active_run_id: active, active_status: status }), at(20), ids);
    assert.equal(p.runs.length, 1);
    assert.equal(p.recorded.length, 0);
    assert.deepEqual(p.replaced, [{ runId: active, jobId: 7, status, by: p.runs[0]!.runId }]);
    assert.equal(p.update.activeRunId, p.runs[0]!.runId);
  }
});

test('replace: a final or vanished active run is not replaced, only cleared', () => {
  for (const status of [
    'succeeded',
    'failed',
    'timed_out',
    'lost',
    'skipped',
    'missed',
    'killed',
    null,
  ]) {
    const p = planClaim(job({ active_run_id: 'b'.repeat(32), active_status: status }), at(20), ids);
    assert.equal(p.runs.length, 1, String(status));
    assert.equal(p.replaced, undefined, String(status));
    assert.equal(p.update.activeRunId, p.runs[0]!.runId);
  }
});

test('replace with catch_up all: one run per claim, the earlier ones skipped as replaced by it', () => {
  const active = 'c'.repeat(32);
  const p = planClaim(
    job({
      policies: JSON.stringify({ overlap: 'replace', catch_up: 'all' }),
      active_run_id: active,
      active_status: 'running',
    }),
    at(3_500),
    ids,
  );
  assert.equal(p.runs.length, 1);
  assert.equal(p.runs[0]!.scheduledFor.getTime(), at(3000).getTime(), 'the newest occurrence');
  assert.equal(p.recorded.length, 3);
  for (const r of p.recorded) {
    assert.equal(r.status, 'skipped');
    assert.match(r.reason, /^skipped: replaced by run0+\d+ in the same claim$/);
  }
  assert.equal(p.replaced?.length, 1);
  assert.equal(p.replaced![0]!.runId, active);
  assert.equal(p.update.activeRunId, p.runs[0]!.runId);
});

test('allow and forbid never replace', () => {
  for (const overlap of ['allow', 'forbid']) {
    const p = planClaim(
      job({
        policies: JSON.stringify({ overlap }),
        active_run_id: 'd'.repeat(32),
        active_status: 'running',
      }),
      at(20),
      ids,
    );
    assert.equal(p.replaced, undefined, overlap);
  }
});

const order = {
  runId: 'e'.repeat(32),
  requestedBy: 'api from 10.0.0.5',
  requestedAt: new Date(),
  reason: undefined,
};
const runJob = {
  runId: 'e'.repeat(32),
  jobId: 3,
  name: 'j',
  command: 'sleep 60',
  timeoutSeconds: null,
  scheduledFor: null,
  notBefore: null,
};

test('a killed run is reported killed, with who asked, and the result passes the parser', () => {
  const outcome = {
    kind: 'exited' as const,
    returnCode: 143,
    signal: 'SIGTERM' as const,
    terminatedBy: 'kill' as const,
    error: undefined,
    spawnedAt: Date.now() - 1000,
    exitedAt: Date.now(),
  };
  const r = finishedResult(
    { job: runJob, host: 'h', startTime: new Date() },
    outcome,
    new OutputTail(0),
    null,
    order,
  );
  assert.equal(r.status, 'killed');
  assert.equal(r.reason, 'killed by api from 10.0.0.5; process group terminated (SIGTERM)');
  assert.equal(parseResultMessage(JSON.stringify(r)).status, 'killed');
  const replaced = finishedResult(
    { job: runJob, host: 'h', startTime: new Date() },
    { ...outcome, signal: 'SIGKILL' },
    new OutputTail(0),
    null,
    { ...order, requestedBy: 'overlap replace', reason: `replaced by ${'f'.repeat(32)}` },
  );
  assert.match(replaced.reason!, /^replaced by f{32}; process group terminated \(SIGKILL\)$/);
  const never = killedBeforeStartResult(runJob, 'h', order);
  assert.equal(never.status, 'killed');
  assert.equal(never.start_time, undefined);
  assert.equal(parseResultMessage(JSON.stringify(never)).status, 'killed');
  // Killed is a final word: only a finished result may say it.
  assert.throws(() => parseResultMessage(JSON.stringify({ ...never, type: 'heartbeat' })));
});

test('the memory of kill orders keeps the newest, up to its capacity', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (xs) => {
      const k = new KilledRuns(10);
      for (const x of xs) k.remember({ ...order, runId: String(x).padStart(32, '0') });
      assert.ok(k.size <= 10);
      const last = xs.at(-1);
      if (last !== undefined) assert.ok(k.get(String(last).padStart(32, '0')));
    }),
  );
});
