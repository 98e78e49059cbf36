/**
 * The results consumer's policy rules (docs/policies.md, docs/results.md),
 * in process: a real `ResultsService` against this file's database and
 * vhost, real result messages, and its typed events. Retries are written
 * in the transaction of the result that makes a run final, never twice;
 * `jobs.active_run_id` follows; `missed` is a final status; the lost-run
 * sweep retries lost runs only when the policy lists `lost`.
 */
import { afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AmqpConnection, ConfirmPublisher } from '../../src/core/amqp';
import { exponentialBackoff } from '../../src/core/async';
import { parseAmqpUrl, type Config } from '../../src/core/config';
import { silentLogger } from '../../src/core/logger';
import { RESULTS_DEAD_QUEUE } from '../../src/core/topology';
import { ResultsService, type ResultsEvents } from '../../src/results';
import { EventMonitor } from '../helpers/event-monitor';
import { useServices, waitFor } from '../helpers/services';
import {
  insertJob,
  insertRun,
  jobRow,
  newRunId,
  resultMessage,
  ResultPublisher,
  runRow,
} from '../helpers/results';

const svc = useServices();
let pub: ResultPublisher;

interface Running {
  events: EventMonitor<ResultsEvents>;
  stop(): Promise<void>;
}
const running: Running[] = [];

async function startService(config: Partial<Config['results']> = {}): Promise<Running> {
  const logger = silentLogger();
  const connection = new AmqpConnection(parseAmqpUrl(svc.vhost.url), {
    logger,
    name: 'results-retries',
  });
  const publisher = new ConfirmPublisher(connection, logger);
  const service = new ResultsService({
    db: svc.db.db,
    connection,
    publisher,
    config: { prefetch: 100, flushMs: 20, lostAfterMs: 60_000, ...config },
    logger,
    backoff: exponentialBackoff(50, 200),
  });
  const events = new EventMonitor<ResultsEvents>(service);
  let stopped: Promise<void> | undefined;
  const r: Running = {
    events,
    stop: () =>
      (stopped ??= (async () => {
        await service.stop();
        await publisher.close();
        await connection.close();
      })()),
  };
  running.push(r);
  await service.start();
  await events.waitFor('consuming', { timeoutMs: 30_000 });
  return r;
}

/** A job with these policy fields (as jobs.policies holds them) and, for overlap forbid, its active run. */
async function policyJob(name: string, policies: Record<string, unknown> | null): Promise<number> {
  const id = await insertJob(svc.db.db, name);
  await svc.db
    .db('jobs')
    .where({ id })
    .update({ policies: policies && JSON.stringify(policies) });
  return id;
}

async function runningRun(jobId: number, opts: { attempt?: number; first?: string } = {}) {
  const runId = await insertRun(svc.db.db, jobId, { status: 'running' });
  await svc.db
    .db('runs')
    .where({ run_id: runId })
    .update({
      routing_key: 'nightly',
      attempt: opts.attempt ?? 1,
      first_run_id: opts.first ?? null,
    });
  return runId;
}

interface RetryRow {
  run_id: string;
  job_id: number;
  job_name: string | null;
  status: string;
  triggered_by: string;
  attempt: number;
  first_run_id: string | null;
  not_before: Date | null;
  scheduled_for: Date;
  queued_at: Date;
  published_at: Date | null;
  routing_key: string | null;
  claimed_by: string | null;
}

async function retriesOf(jobId: number): Promise<RetryRow[]> {
  return svc.db
    .db<RetryRow>('runs')
    .where({ job_id: jobId, triggered_by: 'retry' })
    .orderBy('attempt');
}

async function dbNow(): Promise<number> {
  const [rows] = (await svc.db.db.raw('SELECT UTC_TIMESTAMP(3) AS now')) as [Array<{ now: Date }>];
  return rows[0]!.now.getTime();
}

const failed = (jobId: number, runId: string) =>
  resultMessage('finished', jobId, runId, { return_code: 1, status: 'failed', output: 'boom\n' });

describe('results consumer: retries and the new statuses', () => {
  before(async () => {
    pub = await ResultPublisher.open(await svc.vhost.connect());
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
  });

  test('a failed run gets one retry row, written with its result; a redelivered result writes none', async () => {
    const { events } = await startService();
    const jobId = await policyJob('retried', {
      overlap: 'forbid',
      retries: { max: 2, delay: 'PT10S', backoff: 2 },
    });
    const runId = await runningRun(jobId);
    await svc.db.db('jobs').where({ id: jobId }).update({ active_run_id: runId });

    const before = await dbNow();
    await pub.publish(failed(jobId, runId));
    const [scheduled] = await events.waitFor('retry:scheduled');
    const after = await dbNow();
    assert.equal((await runRow(svc.db.db, runId))?.status, 'failed');
    const [retry, ...more] = await retriesOf(jobId);
    assert.equal(more.length, 0, 'one retry');
    assert.ok(retry);
    assert.deepEqual(scheduled, {
      runId,
      retryRunId: retry.run_id,
      jobId,
      attempt: 2,
      notBefore: retry.not_before,
    });
    assert.equal(retry.status, 'queued');
    assert.equal(retry.attempt, 2);
    assert.equal(retry.first_run_id, runId);
    assert.equal(retry.published_at, null);
    assert.equal(retry.routing_key, 'nightly', 'routing key of the run it retries');
    assert.equal(retry.job_name, `job-${jobId}`);
    assert.equal(retry.claimed_by?.trim(), 'results');
    assert.equal(retry.scheduled_for.getTime(), retry.not_before!.getTime());
    // The first retry waits delay (10 s) less up to 20 % jitter, from the database's now.
    const wait = retry.not_before!.getTime();
    assert.ok(wait >= before + 8000 && wait <= after + 10_000, `not_before ${wait - before} ms on`);
    const job = await jobRow(svc.db.db, jobId);
    assert.equal((job as unknown as { active_run_id: string }).active_run_id, retry.run_id);
    // SPEC's columns keep their meaning: the run that ended failed.
    assert.equal(job?.last_run_status?.trim(), 'failed');

    // The same result again (a redelivery, another consumer): nothing new.
    await pub.publish(failed(jobId, runId));
    await events.waitFor('batch:stored', { n: 2 });
    assert.equal((await retriesOf(jobId)).length, 1, 'still one retry');
    assert.equal(events.count('retry:scheduled'), 1);
  });

  test('the retry is in the result’s transaction: if it cannot be written, neither is the result', async () => {
    const { events } = await startService();
    const jobId = await policyJob('atomic', { retries: { max: 1, delay: 'PT1S' } });
    const runId = await runningRun(jobId);
    await svc.db.db.raw(`CREATE TRIGGER refuse_retry BEFORE INSERT ON runs FOR EACH ROW
      BEGIN
        IF NEW.triggered_by = 'retry' THEN
          SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the retry trigger';
        END IF;
      END`);
    try {
      const deadBefore = (await pub.channel.checkQueue(RESULTS_DEAD_QUEUE)).messageCount;
      await pub.publish(failed(jobId, runId));
      // The writer tries it, then sets it aside as the one message it cannot store.
      await events.waitFor('dead-lettered', { timeoutMs: 20_000 });
      assert.equal((await pub.channel.checkQueue(RESULTS_DEAD_QUEUE)).messageCount, deadBefore + 1);
      // Had the retry been written after the COMMIT, the run would read failed with no retry.
      assert.equal((await runRow(svc.db.db, runId))?.status, 'running');
      assert.equal((await retriesOf(jobId)).length, 0);
    } finally {
      await svc.db.db.raw('DROP TRIGGER IF EXISTS refuse_retry');
    }
    await pub.publish(failed(jobId, runId));
    await events.waitFor('retry:scheduled');
    assert.equal((await runRow(svc.db.db, runId))?.status, 'failed');
    assert.equal((await retriesOf(jobId)).length, 1);
  });

  test('no retry: the last attempt, an outcome not in `on`, a job without retries, a job that is gone', async () => {
    const { events } = await startService();
    const last = await policyJob('last', { retries: { max: 2, delay: 'PT1S' } });
    const first = newRunId();
    const lastRun = await runningRun(last, { attempt: 3, first });
    const notOn = await policyJob('not-on', { retries: { max: 2, delay: 'PT1S', on: ['lost'] } });
    const notOnRun = await runningRun(notOn);
    const plain = await policyJob('plain', null);
    const plainRun = await runningRun(plain);
    const gone = await policyJob('gone', { retries: { max: 2, delay: 'PT1S' } });
    const goneRun = await runningRun(gone);
    await svc.db.db('jobs').where({ id: gone }).delete();
    const ok = await policyJob('ok', { retries: { max: 2, delay: 'PT1S' } });
    const okRun = await runningRun(ok);

    await pub.publish(
      failed(last, lastRun),
      failed(notOn, notOnRun),
      failed(plain, plainRun),
      failed(gone, goneRun),
      resultMessage('finished', ok, okRun),
    );
    await waitFor(async () => (await runRow(svc.db.db, okRun))?.status === 'succeeded');
    await waitFor(async () => (await runRow(svc.db.db, goneRun))?.status === 'failed');
    for (const j of [last, notOn, plain, gone, ok]) assert.equal((await retriesOf(j)).length, 0);
    assert.equal(events.count('retry:scheduled'), 0);
  });

  test('a retry that fails again is retried with the backoff, keeping first_run_id', async () => {
    const { events } = await startService();
    const jobId = await policyJob('chain', { retries: { max: 3, delay: 'PT2S', backoff: 3 } });
    const first = newRunId();
    const runId = await runningRun(jobId, { attempt: 2, first });
    const before = await dbNow();
    await pub.publish(
      resultMessage('finished', jobId, runId, {
        return_code: null,
        status: 'timed_out',
        reason: 'timed out after 1 s',
      }),
    );
    await events.waitFor('retry:scheduled');
    const [retry] = await retriesOf(jobId);
    assert.equal(retry?.attempt, 3);
    assert.equal(retry?.first_run_id, first);
    // Retry 2 waits 2 s × 3 = 6 s, less up to 20 %.
    const wait = retry!.not_before!.getTime() - before;
    assert.ok(wait >= 4800 - 50 && wait <= 6000 + 2000, `waits ${wait} ms`);
  });

  test('active_run_id is cleared when its run ends without a retry, and only then', async () => {
    await startService();
    const jobId = await policyJob('forbid', { overlap: 'forbid' });
    const runId = await runningRun(jobId);
    const other = await runningRun(jobId);
    await svc.db.db('jobs').where({ id: jobId }).update({ active_run_id: runId });
    // Another run of the job ending leaves the pointer alone.
    await pub.publish(resultMessage('finished', jobId, other));
    await waitFor(async () => (await runRow(svc.db.db, other))?.status === 'succeeded');
    const active = async () =>
      ((await svc.db.db('jobs').where({ id: jobId }).first()) as { active_run_id: string | null })
        .active_run_id;
    assert.equal(await active(), runId);
    await pub.publish(resultMessage('finished', jobId, runId));
    await waitFor(async () => (await active()) === null, { message: 'active_run_id cleared' });
  });

  test('missed: a final status with a reason and no host; the job shows it, never running', async () => {
    const { events } = await startService();
    const jobId = await policyJob('late', { starting_deadline: 'PT1S', overlap: 'forbid' });
    const runId = await insertRun(svc.db.db, jobId);
    await svc.db.db('jobs').where({ id: jobId }).update({ active_run_id: runId });
    const reason = 'not started within its starting deadline (3 s late)';
    await pub.publish(
      {
        job_id: jobId,
        run_id: runId,
        type: 'finished',
        'x-send-datetime': new Date().toISOString(),
        'x-host': 'busy-runner',
        return_code: null,
        status: 'missed',
        reason,
      },
      // Only `finished` may say missed.
      resultMessage('failed', jobId, newRunId(), { status: 'missed' }),
    );
    await events.waitFor('dead-lettered');
    await waitFor(async () => (await runRow(svc.db.db, runId))?.status === 'missed');
    const run = await runRow(svc.db.db, runId);
    assert.equal(run?.reason, reason);
    assert.equal(run?.host, null, 'never ran anywhere');
    assert.equal(run?.started_at, null);
    assert.equal(run?.return_code, null);
    const job = await jobRow(svc.db.db, jobId);
    assert.equal(job?.last_run_status?.trim(), 'missed');
    assert.equal(job?.current_status, null, 'a run that never started is never current');
    assert.equal((job as unknown as { active_run_id: string | null }).active_run_id, null);
    // Final: a late result of any kind changes nothing.
    const batches = events.count('batch:stored');
    await pub.publish(resultMessage('finished', jobId, runId));
    await events.waitFor('batch:stored', { n: batches + 1 });
    assert.equal((await runRow(svc.db.db, runId))?.status, 'missed');
  });

  test('lost: retried when `on` lists lost, not otherwise; one retry however many sweeps', async () => {
    const { events } = await startService({ lostAfterMs: 1000 });
    const withLost = await policyJob('lost-on', {
      retries: { max: 1, delay: 'PT30S', on: ['failed', 'lost'] },
    });
    const withoutLost = await policyJob('lost-off', { retries: { max: 1, delay: 'PT30S' } });
    const old = new Date(Date.now() - 10_000);
    const a = await insertRun(svc.db.db, withLost, { status: 'running', queuedAt: old });
    const b = await insertRun(svc.db.db, withoutLost, { status: 'running', queuedAt: old });
    // Heartbeats and starts long past: both are silent.
    await svc.db
      .db('runs')
      .whereIn('run_id', [a, b])
      .update({ heartbeat_at: old, started_at: old, scheduled_for: old });
    await svc.db.db('jobs').where({ id: withLost }).update({ active_run_id: a });

    await waitFor(
      async () =>
        (await runRow(svc.db.db, a))?.status === 'lost' &&
        (await runRow(svc.db.db, b))?.status === 'lost',
      { timeoutMs: 15_000, message: 'both runs marked lost' },
    );
    const [scheduled] = await events.waitFor('retry:scheduled');
    assert.equal(scheduled.runId, a);
    const [retry, ...more] = await retriesOf(withLost);
    assert.equal(more.length, 0);
    assert.equal(retry?.first_run_id, a);
    assert.equal(
      ((await svc.db.db('jobs').where({ id: withLost }).first()) as { active_run_id: string })
        .active_run_id,
      retry?.run_id,
    );
    assert.equal((await retriesOf(withoutLost)).length, 0);
    // The runner's late result corrects the lost run, but its retry was decided already.
    await pub.publish(failed(withLost, a));
    await events.waitFor('batch:stored');
    assert.equal((await runRow(svc.db.db, a))?.status, 'failed');
    assert.equal((await retriesOf(withLost)).length, 1);
    assert.equal(events.count('retry:scheduled'), 1);
  });
});
