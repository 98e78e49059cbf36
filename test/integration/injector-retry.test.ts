import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, useServices } from '../helpers/services';
import type { Proc } from '../helpers/processes';
import { connectWithJobQueue, drainQueue, insertJobs, startInjector } from '../helpers/injector';
import { newRunId } from '../../src/core/runs';
import type { Knex } from '../../src/core/db';

/**
 * Retry runs with the real injector. The results consumer writes a retry
 * as a queued, unpublished run with not_before ahead; the injector must
 * publish it once not_before has come, not before (however old the row:
 * the stale-unpublished sweep must not take it early), once across a
 * restart, and not while its job is paused. The rows are written here as
 * the results consumer writes them.
 */

const svc = useServices();
// The stale sweep looks for runs unconfirmed for 1 s: it would take an early retry at once.
const ENV = { CRONQ_INJECTOR_REPUBLISH_AFTER_MS: '1000' };

async function insertRetry(db: Knex, jobId: number, inMs: number): Promise<string> {
  const runId = newRunId();
  await db.raw(
    `INSERT INTO runs (run_id, job_id, job_name, scheduled_for, triggered_by, status, routing_key,
       queued_at, missed, attempt, first_run_id, not_before)
     SELECT ?, ?, 'retried', t, 'retry', 'queued', 'default', t - INTERVAL 1 HOUR, 0, 2, ?, t
       FROM (SELECT UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND AS t) x`,
    [runId, jobId, newRunId(), inMs * 1000],
  );
  return runId;
}

async function runOf(db: Knex, runId: string) {
  return (await db('runs').where({ run_id: runId }).first('published_at', 'not_before')) as {
    published_at: Date | null;
    not_before: Date;
  };
}

test(
  'a retry run is published when its not_before comes, not before, under its own run id',
  {
    timeout: 60_000,
  },
  async () => {
    const db = svc.db.db;
    const conn = await connectWithJobQueue(svc.vhost);
    svc.track(await startInjector(svc.db, svc.vhost, ENV));
    const [jobId] = await insertJobs(db, [{ name: 'retried', schedule: null, nextRun: null }]);
    await db('jobs')
      .where({ id: jobId })
      .update({ policies: JSON.stringify({ starting_deadline: 'PT1M' }) });
    const runId = await insertRetry(db, jobId!, 2000);
    const run = await waitFor(
      async () => {
        const r = await runOf(db, runId);
        return r.published_at ? r : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 20, message: 'the retry published' },
    );
    const late = run.published_at!.getTime() - run.not_before.getTime();
    assert.ok(late >= 0, `published ${-late} ms before its not_before`);
    assert.ok(late < 900, `published ${late} ms after its not_before (the probe wakes for it)`);
    const msgs = await drainQueue(conn, 'cronq_jobs');
    assert.equal(msgs.length, 1);
    const m = msgs[0]! as (typeof msgs)[0] & { attempt?: number; start_by?: string };
    assert.equal(m.run_id, runId);
    assert.equal(m.messageId, runId);
    assert.equal(m.trigger, 'retry');
    assert.equal(m.attempt, 2);
    assert.equal(m.start_by, new Date(run.not_before.getTime() + 60_000).toISOString());
    await conn.close();
  },
);

test(
  'a retry due while the injector restarts is published once, at its time',
  {
    timeout: 60_000,
  },
  async () => {
    const db = svc.db.db;
    const conn = await connectWithJobQueue(svc.vhost);
    await drainQueue(conn, 'cronq_jobs');
    let injector: Proc = svc.track(await startInjector(svc.db, svc.vhost, ENV));
    const [jobId] = await insertJobs(db, [
      { name: 'retried-restart', schedule: null, nextRun: null },
    ]);
    const runId = await insertRetry(db, jobId!, 3000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await injector.stop()).code, 0);
    assert.equal((await runOf(db, runId)).published_at, null, 'not published early');
    injector = svc.track(await startInjector(svc.db, svc.vhost, ENV));
    const run = await waitFor(
      async () => {
        const r = await runOf(db, runId);
        return r.published_at ? r : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 20, message: 'the retry published' },
    );
    assert.ok(run.published_at!.getTime() >= run.not_before.getTime());
    // Past the stale sweep's 1 s: still one message.
    await new Promise((r) => setTimeout(r, 2500));
    const msgs = (await drainQueue(conn, 'cronq_jobs')).filter((m) => m.run_id === runId);
    assert.equal(msgs.length, 1);
    await conn.close();
  },
);

test("a paused job's due retry waits for the resume", { timeout: 60_000 }, async () => {
  const db = svc.db.db;
  const conn = await connectWithJobQueue(svc.vhost);
  svc.track(await startInjector(svc.db, svc.vhost, ENV));
  const [jobId] = await insertJobs(db, [{ name: 'retried-paused', schedule: null, nextRun: null }]);
  await db.raw('UPDATE jobs SET paused_at = UTC_TIMESTAMP(3) WHERE id = ?', [jobId]);
  const runId = await insertRetry(db, jobId!, 500);
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal((await runOf(db, runId)).published_at, null, 'not published while paused');
  await db('jobs').where({ id: jobId }).update({ paused_at: null });
  await waitFor(async () => (await runOf(db, runId)).published_at !== null, {
    timeoutMs: 10_000,
    intervalMs: 50,
    message: 'the retry published after the resume',
  });
  await conn.close();
});
