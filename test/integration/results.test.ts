import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createTestDatabase,
  createTestVhost,
  queueCounts,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { runCommand, startCommand, type Proc } from '../helpers/processes';
import {
  eventsOf,
  insertJob,
  insertRun,
  jobRow,
  newRunId,
  resultMessage,
  ResultPublisher,
  runRow,
} from '../helpers/results';
import { RESULTS_DEAD_QUEUE, RESULTS_QUEUE } from '../../src/core/topology';
import type { RunRow } from '../../src/core/runs';

/**
 * cronq-results against the real MariaDB and RabbitMQ: one consumer process
 * for the file, result messages published in the runner's wire format, jobs
 * and runs rows set up with SQL. Every test uses its own jobs and runs.
 */

let tdb: TestDatabase;
let vhost: TestVhost;
let consumer: Proc;
let pub: ResultPublisher;

async function finalRun(runId: string, status = 'succeeded') {
  return waitFor(
    async () => {
      const r = await runRow(tdb.db, runId);
      return r && r.status === status ? r : undefined;
    },
    { timeoutMs: 10_000, message: `run ${runId} ${status}` },
  );
}

/** Publish a marker run's `starting` and wait for it: everything published before it has been written. */
async function drain(jobId: number): Promise<void> {
  const marker = newRunId();
  await pub.publish(resultMessage('starting', jobId, marker));
  await finalRun(marker, 'running');
}

async function snapshot(runId: string, jobId: number) {
  const strip = (rows: RunRow[]) => rows.map((r) => ({ ...r, heartbeat_at: undefined }));
  return {
    run: strip([(await runRow(tdb.db, runId))!]),
    events: await eventsOf(tdb.db, runId),
    job: await jobRow(tdb.db, jobId),
  };
}

before(async () => {
  [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  pub = await ResultPublisher.open(await vhost.connect());
  consumer = startCommand('cronq-results', {
    env: {
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: vhost.url,
      CRONQ_LOST_AFTER_SECONDS: '2',
      CRONQ_RESULTS_FLUSH_MS: '20',
    },
  });
  // Startup includes the migrations: slow on this shared machine.
  await pub.waitForConsumers(1, 40_000);
});

after(async () => {
  const exit = await consumer?.stop();
  await vhost?.drop();
  await tdb?.drop();
  assert.equal(exit?.code, 0, 'cronq-results exits 0 on SIGTERM');
});

describe('cronq-results', () => {
  test('--help exits 0 and names its flags; a bad setting exits 2 with one line naming it', async () => {
    const help = await runCommand('cronq-results', { args: ['--help'] });
    assert.equal(help.code, 0);
    for (const flag of ['--prefetch', '--log-level', '--verbose', '--help'])
      assert.match(help.stdout, new RegExp(flag));
    const bad = await runCommand('cronq-results', {
      args: ['--prefetch', 'lots'],
      env: { DATABASE_URL: tdb.url, RABBITMQ_URL: vhost.url },
    });
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.match(bad.stderr, /CRONQ_RESULTS_PREFETCH/);
  });

  test('starting sets the job running with last_run_start; finished records the outcome on run, event and job', async () => {
    const jobId = await insertJob(tdb.db, 'plain');
    const runId = await insertRun(tdb.db, jobId);
    const start = new Date(Date.now() - 5000);
    await pub.publish(resultMessage('starting', jobId, runId, { start_time: start.toISOString() }));
    const running = await finalRun(runId, 'running');
    assert.equal(running.started_at!.getTime(), start.getTime());
    assert.equal(running.host, 'host-a.example.com');
    let job = await jobRow(tdb.db, jobId);
    assert.equal(job!.current_status, 'running');
    assert.ok(job!.last_run_start, 'starting sets last_run_start (the original never did)');
    assert.equal(
      Math.floor(job!.last_run_start.getTime() / 1000),
      Math.floor(start.getTime() / 1000),
    );
    assert.equal(job!.last_run_status, null);

    await pub.publish(
      resultMessage('finished', jobId, runId, {
        start_time: start.toISOString(),
        return_code: 3,
        status: 'failed',
        output: "boom? it's ?? done\n",
        run_time: 5,
      }),
    );
    const done = await finalRun(runId, 'failed');
    assert.equal(done.return_code, 3);
    assert.equal(
      done.output_tail,
      "boom? it's ?? done\n",
      'question marks and quotes in output are stored as sent',
    );
    assert.equal(done.run_time, 5);
    assert.ok(done.finished_at);
    job = await jobRow(tdb.db, jobId);
    assert.equal(job!.current_status, 'failed');
    assert.equal(job!.last_run_status, 'failed');
    assert.ok(job!.last_run_stop);
    const events = await eventsOf(tdb.db, runId);
    assert.deepEqual(
      events.map((e) => [e.type, e.job_id, e.host, e.return_code, e.message_key]),
      [
        ['starting', jobId, 'host-a.example.com', null, `${runId}:starting`],
        ['finished', jobId, 'host-a.example.com', 3, `${runId}:finished`],
      ],
    );
  });

  test('the same messages delivered twice leave the same rows as once', async () => {
    const jobId = await insertJob(tdb.db, 'dup');
    const runId = await insertRun(tdb.db, jobId);
    const starting = resultMessage('starting', jobId, runId);
    const finished = resultMessage('finished', jobId, runId, { start_time: starting.start_time });
    await pub.publish(starting, finished);
    await finalRun(runId);
    const once = await snapshot(runId, jobId);
    // Again, in separate batches and in one batch together.
    await pub.publish(starting);
    await drain(jobId);
    await pub.publish(finished, starting, finished);
    await drain(jobId);
    const twice = await snapshot(runId, jobId);
    assert.deepEqual(twice.run, once.run);
    assert.deepEqual(twice.events, once.events);
    assert.equal(twice.job!.last_run_status, 'succeeded');
    assert.equal(twice.job!.last_run_stop!.getTime(), once.job!.last_run_stop!.getTime());
  });

  test('a finished that arrives before its starting ends in the final state with started_at from either message', async () => {
    const jobId = await insertJob(tdb.db, 'ooo');
    const runId = await insertRun(tdb.db, jobId);
    const start = new Date(Date.now() - 10_000);
    await pub.publish(
      resultMessage('finished', jobId, runId, { start_time: start.toISOString(), return_code: 0 }),
    );
    const first = await finalRun(runId);
    assert.equal(
      first.started_at!.getTime(),
      start.getTime(),
      'started_at from the finished message',
    );
    // Sent at its start, delivered after the finished (a requeued batch).
    await pub.publish(
      resultMessage('starting', jobId, runId, {
        start_time: start.toISOString(),
        'x-send-datetime': start.toISOString(),
      }),
    );
    await drain(jobId);
    const after = (await runRow(tdb.db, runId))!;
    assert.equal(
      after.status,
      'succeeded',
      'a late starting never moves a final run back to running',
    );
    assert.equal(after.started_at!.getTime(), start.getTime());
    assert.equal((await eventsOf(tdb.db, runId)).length, 2);
    // The marker run is the newest started run now, so the job shows it running;
    // the finished run stays the last result.
    const job = await jobRow(tdb.db, jobId);
    assert.equal(job!.last_run_status, 'succeeded');

    // Both in one batch, finished first.
    const runId2 = newRunId();
    const start2 = new Date(Date.now() - 1000);
    await pub.publish(
      resultMessage('finished', jobId, runId2, {
        start_time: start2.toISOString(),
        return_code: 1,
        status: 'failed',
      }),
      resultMessage('starting', jobId, runId2, { start_time: start2.toISOString() }),
    );
    const second = await finalRun(runId2, 'failed');
    assert.equal(second.started_at!.getTime(), start2.getTime());
  });

  test('a result for a run the injector never recorded still makes a runs row (an old runner)', async () => {
    const jobId = await insertJob(tdb.db, 'legacy');
    const runId = newRunId();
    const start = new Date(Date.now() - 2000);
    // The Python runner's shape: no status, output or name; Python's str(datetime).
    const py = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '000');
    await pub.publish({
      job_id: jobId,
      run_id: runId,
      type: 'starting',
      start_time: py(start),
      'x-send-datetime': py(start),
      'x-host': 'old.example.com',
    });
    await pub.publish({
      job_id: jobId,
      run_id: runId,
      type: 'finished',
      return_code: 0,
      run_time: 2,
      start_time: py(start),
      'x-send-datetime': py(new Date()),
      'x-host': 'old.example.com',
    });
    const run = await finalRun(runId);
    assert.equal(run.job_id, jobId);
    assert.equal(run.job_name, 'legacy');
    assert.equal(run.started_at!.getTime(), start.getTime());
    assert.equal(run.scheduled_for.getTime(), start.getTime());
    assert.equal((await jobRow(tdb.db, jobId))!.last_run_status, 'succeeded');
  });

  test('a result for a job that no longer exists is recorded on its run and acked', async () => {
    const jobId = await insertJob(tdb.db, 'gone');
    const runId = await insertRun(tdb.db, jobId);
    await tdb.db('jobs').where({ id: jobId }).del();
    const orphan = newRunId();
    await pub.publish(
      resultMessage('starting', jobId, runId),
      resultMessage('finished', jobId, runId),
      resultMessage('finished', 987654, orphan),
    );
    assert.equal((await finalRun(runId)).status, 'succeeded');
    assert.equal((await finalRun(orphan)).job_id, 987654);
    assert.equal(
      (await eventsOf(tdb.db, runId)).length,
      0,
      'no events row: events.job_id cascades from jobs',
    );
    await waitFor(async () => (await queueCounts(vhost.vhost, RESULTS_QUEUE)).messages === 0, {
      message: 'the results queue is empty (nothing left unacked)',
    });
  });

  test('a malformed message is dead-lettered to cronq_results_dead unchanged and the next good one is stored', async () => {
    const jobId = await insertJob(tdb.db, 'poison');
    const runId = newRunId();
    const bad = [
      Buffer.from('not json {'),
      Buffer.from(
        JSON.stringify({
          job_id: jobId,
          type: 'finished',
          'x-send-datetime': new Date().toISOString(),
        }),
      ),
    ];
    await pub.publish(bad[0]!, bad[1]!, resultMessage('finished', jobId, runId));
    await finalRun(runId);
    const got: Buffer[] = [];
    await waitFor(
      async () => {
        const m = await pub.channel.get(RESULTS_DEAD_QUEUE, { noAck: true });
        if (m) got.push(m.content);
        return got.length === 2;
      },
      { message: 'two dead letters' },
    );
    assert.deepEqual(got.map((b) => b.toString()).sort(), bad.map((b) => b.toString()).sort());
    assert.equal(
      consumer.lines().filter((l) => l.includes('moved to the dead-letter queue')).length,
      2,
      'logged once each',
    );
    await waitFor(async () => (await queueCounts(vhost.vhost, RESULTS_QUEUE)).messages === 0, {
      message: 'the results queue is empty',
    });
  });

  test("an old run's late result does not overwrite the status of a newer run", async () => {
    const jobId = await insertJob(tdb.db, 'late');
    const t0 = new Date(Date.now() - 120_000);
    const older = await insertRun(tdb.db, jobId, { scheduledFor: t0 });
    const newer = await insertRun(tdb.db, jobId, { scheduledFor: new Date(t0.getTime() + 60_000) });
    await pub.publish(resultMessage('starting', jobId, older, { start_time: t0.toISOString() }));
    await finalRun(older, 'running');
    await pub.publish(
      resultMessage('starting', jobId, newer),
      resultMessage('finished', jobId, newer, { return_code: 2, status: 'failed' }),
    );
    await finalRun(newer, 'failed');
    await pub.publish(
      resultMessage('finished', jobId, older, { start_time: t0.toISOString(), return_code: 0 }),
    );
    await finalRun(older, 'succeeded');
    const job = await jobRow(tdb.db, jobId);
    assert.equal(job!.last_run_status, 'failed', 'the newer run decides');
    assert.equal(job!.current_status, 'failed');
    assert.ok(job!.last_run_start!.getTime() > t0.getTime() + 30_000);
  });

  test('a running run with no heartbeat is marked lost within the limit; a queued run is not', async () => {
    const jobId = await insertJob(tdb.db, 'silent');
    const stale = await insertRun(tdb.db, jobId, {
      scheduledFor: new Date(Date.now() - 3_600_000),
    });
    const runId = await insertRun(tdb.db, jobId);
    await pub.publish(resultMessage('starting', jobId, runId));
    const startedAt = Date.now();
    await finalRun(runId, 'running');
    const lost = await finalRun(runId, 'lost');
    const tookMs = Date.now() - startedAt;
    // Limit 2 s, plus one sweep interval (0.5 s ± 25%) and slack for this busy shared machine.
    assert.ok(tookMs > 1500, `not before the limit (${tookMs} ms)`);
    assert.ok(
      tookMs < 2000 + 625 + 4000,
      `marked lost ${tookMs} ms after its last message (limit 2 s)`,
    );
    assert.match(lost.reason ?? '', /^no heartbeat from host-a\.example\.com for \d+ s$/);
    assert.ok(lost.finished_at);
    const job = await jobRow(tdb.db, jobId);
    assert.equal(job!.current_status, 'lost');
    assert.equal(job!.last_run_status, 'lost');
    assert.equal(
      (await runRow(tdb.db, stale))!.status,
      'queued',
      'queued runs are never marked lost',
    );
  });

  test('heartbeats keep a run alive; a finished after it was marked lost records the true outcome', async () => {
    const jobId = await insertJob(tdb.db, 'slow');
    const runId = await insertRun(tdb.db, jobId);
    const start = new Date();
    await pub.publish(resultMessage('starting', jobId, runId, { start_time: start.toISOString() }));
    await finalRun(runId, 'running');
    const until = Date.now() + 4500;
    while (Date.now() < until) {
      await pub.publish(
        resultMessage('heartbeat', jobId, runId, { start_time: start.toISOString() }),
      );
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(
        (await runRow(tdb.db, runId))!.status,
        'running',
        'a run with heartbeats is not lost',
      );
    }
    assert.equal((await eventsOf(tdb.db, runId)).length, 1, 'heartbeats write no events');
    await finalRun(runId, 'lost');
    await pub.publish(
      resultMessage('finished', jobId, runId, { start_time: start.toISOString(), return_code: 0 }),
    );
    const done = await finalRun(runId, 'succeeded');
    assert.match(done.reason ?? '', /after the run was marked lost/);
    assert.equal((await jobRow(tdb.db, jobId))!.last_run_status, 'succeeded');
  });
});
