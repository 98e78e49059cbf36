import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rabbitmqctl, waitFor, useServices } from '../helpers/services';
import { type Proc } from '../helpers/processes';
import {
  connectWithJobQueue,
  startInjector,
  drainQueue,
  insertJobs,
  nextWholeSecond,
  runsOf,
  scheduleGaps,
} from '../helpers/injector';

/**
 * DISRUPTIVE: stops the shared RabbitMQ application (rabbitmqctl stop_app)
 * and starts it again in `finally`. Run alone:
 *   flock /tmp/cronq-disruptive.lock node --import tsx --test test/disruptive/injector-broker-outage.test.ts
 */
const svc = useServices();
let injector: Proc | undefined;

async function publishedPerJob(ids: number[]): Promise<Map<number, number>> {
  const rows = (await svc.db
    .db('runs')
    .whereIn('job_id', ids)
    .whereNotNull('published_at')
    .groupBy('job_id')
    .select('job_id')
    .count({ n: '*' })) as Array<{
    job_id: number;
    n: number;
  }>;
  return new Map(rows.map((r) => [r.job_id, Number(r.n)]));
}

test(
  'a broker outage while jobs come due: each job gets one coalesced run afterwards, none is lost, the injector stays up',
  { timeout: 120_000 },
  async () => {
    await (await connectWithJobQueue(svc.vhost)).close();
    injector = await startInjector(svc.db, svc.vhost);
    svc.track(injector);
    const steadyStart = nextWholeSecond(500);
    const steady = await insertJobs(
      svc.db.db,
      Array.from({ length: 50 }, (_, i) => ({
        name: `steady-${i}`,
        schedule: `R/${steadyStart.toISOString()}/PT1S`,
        nextRun: steadyStart,
      })),
      'steady',
    );
    await waitFor(
      async () =>
        [...(await publishedPerJob(steady)).values()].filter((n) => n >= 2).length ===
        steady.length,
      { timeoutMs: 15_000 },
    );

    let during: number[] = [];
    let duringStart: Date;
    let restartedAt = 0;
    try {
      await rabbitmqctl('stop_app');
      // Jobs that come due only while the broker is away, several occurrences each.
      duringStart = nextWholeSecond(200);
      during = await insertJobs(
        svc.db.db,
        Array.from({ length: 50 }, (_, i) => ({
          name: `during-${i}`,
          schedule: `R/${duringStart.toISOString()}/PT1S`,
          nextRun: duringStart,
        })),
        'during',
      );
      await waitFor(() => Date.now() > duringStart.getTime() + 4000, { timeoutMs: 10_000 });
      assert.equal(
        injector.child.exitCode,
        null,
        'the injector is still running during the outage',
      );
    } finally {
      await rabbitmqctl('start_app');
      restartedAt = Date.now();
    }

    // Back: every job runs again, each "during" job first with one run for the whole outage.
    await waitFor(
      async () =>
        [...(await publishedPerJob(during)).values()].filter((n) => n >= 2).length ===
        during.length,
      {
        timeoutMs: 45_000,
        message: 'jobs published again after the broker came back',
      },
    );
    assert.equal(injector.child.exitCode, null, 'the injector is still running');
    const proc = injector;
    const stopped = await proc.stop();
    assert.equal(stopped.code, 0);
    injector = undefined;

    const runs = (await runsOf(svc.db.db)).filter((r) => r.triggered_by === 'schedule');
    assert.deepEqual(
      scheduleGaps(runs, 1000),
      [],
      'every occurrence is a run or counted as missed by one',
    );
    assert.ok(
      runs.every((r) => r.published_at !== null && r.status === 'queued'),
      'every run was published (none left behind)',
    );

    for (const id of during) {
      const mine = runs.filter((r) => r.job_id === id);
      // scheduled_for before the restart = came due while the broker was down.
      const outage = mine.filter((r) => r.scheduled_for.getTime() < restartedAt - 1000);
      assert.equal(outage.length, 1, `job ${id}: one run for the outage, got ${outage.length}`);
      assert.equal(
        outage[0]!.scheduled_for.getTime(),
        duringStart!.getTime(),
        'the run is for the first missed occurrence',
      );
      assert.ok(
        outage[0]!.missed >= 3,
        `job ${id}: the later occurrences are counted as missed (${outage[0]!.missed})`,
      );
    }

    // The queue holds every run (persistent messages survive the broker's restart); a
    // publish whose confirm was lost in the outage may be there twice, but only under its own run id.
    const conn = await svc.vhost.connect();
    const msgs = await drainQueue(conn, 'cronq_jobs');
    const ids = new Set(runs.map((r) => r.run_id));
    assert.ok(
      msgs.every((m) => ids.has(m.run_id)),
      'no message for a run that is not in the runs table',
    );
    assert.equal(
      new Set(msgs.map((m) => m.run_id)).size,
      runs.length,
      'every run reached the queue',
    );

    // One warning per outage, not one per retry.
    const count = (text: string) => proc.lines().filter((l) => l.includes(text)).length;
    assert.equal(count('AMQP broker unavailable; retrying with backoff'), 1, proc.output());
    assert.equal(
      count('broker unavailable: claims paused') +
        count('publishing failed; retrying with backoff'),
      1,
      proc.output(),
    );
  },
);
