import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelModel } from 'amqplib';
import {
  createTestDatabase,
  createTestVhost,
  uniqueName,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { runCommand, startCommand, type Proc } from '../helpers/processes';
import { bindQueue, drainQueue, insertJobs, nextWholeSecond, runsOf } from '../helpers/injector';

/**
 * One injector, started against an empty database (so it must create the
 * tables itself), serves every test of this file; each test uses its own
 * jobs and its own queue.
 */
describe('cronq-injector', () => {
  let tdb: TestDatabase;
  let vh: TestVhost;
  let conn: ChannelModel;
  let injector: Proc;
  const MAX_POLL_MS = 1000;

  before(async () => {
    tdb = await createTestDatabase({ migrated: false });
    vh = await createTestVhost();
    conn = await vh.connect();
    injector = startCommand('cronq-injector', {
      env: injectorEnv(),
    });
    await injector.waitForLine('injector running', 30_000);
  });

  after(async () => {
    await injector?.stop();
    await vh?.drop();
    await tdb?.drop();
  });

  /** The environment of this file's injectors, plus `extra`. */
  function injectorEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: vh.url,
      CRONQ_INJECTOR_MAX_POLL_MS: String(MAX_POLL_MS),
      ...extra,
    };
  }

  /** Waits until `queue` holds messages, and takes them all. */
  function messagesIn(queue: string, opts?: Parameters<typeof waitFor>[1]) {
    return waitFor(async () => {
      const got = await drainQueue(conn, queue);
      return got.length ? got : undefined;
    }, opts);
  }

  async function queueFor(routingKey: string): Promise<string> {
    const ch = await conn.createChannel();
    await bindQueue(ch, routingKey, routingKey);
    await ch.close();
    return routingKey;
  }

  test('creates the tables on start, non-destructively (runs and jobs exist)', async () => {
    assert.ok(await tdb.db.schema.hasTable('jobs'));
    assert.ok(await tdb.db.schema.hasColumn('runs', 'publish_attempt_at'));
  });

  test('a due job is published with both spellings, its run id as message id, and published_at recorded', async () => {
    const queue = await queueFor(uniqueName('q'));
    const start = new Date(Date.now() - 500);
    const [id] = await insertJobs(tdb.db, [
      {
        name: uniqueName('both'),
        schedule: `R/${start.toISOString()}/PT1H`,
        nextRun: start,
        routingKey: queue,
        command: 'echo both',
        timeout: 42,
      },
    ]);
    const [msg] = await messagesIn(queue);
    assert.equal(msg!.job_id, id);
    assert.equal(msg!.id, id);
    assert.equal(msg!.cmd, 'echo both');
    assert.equal(msg!.command, 'echo both');
    assert.equal(msg!.messageId, msg!.run_id);
    assert.equal(msg!.scheduled_for, start.toISOString());
    assert.equal((msg as unknown as { timeout: number }).timeout, 42);
    const run = await waitFor(async () =>
      (await runsOf(tdb.db)).find((r) => r.job_id === id && r.published_at !== null),
    );
    assert.equal(run.run_id, msg!.run_id);
    assert.equal(run.status, 'queued');
    assert.equal(run.triggered_by, 'schedule');
    // next_run moved to the first occurrence after now: one hour after the start.
    const [job] = await tdb.db('jobs').where({ id }).select('next_run', 'locked_by');
    assert.equal(job.next_run.getTime(), start.getTime() + 3600_000);
    assert.match(job.locked_by, /\.\d+$/);
  });

  test('with CRONQ_INJECTOR_LEAD_MS a run is claimed and published ahead of its occurrence, never further ahead than the lead', async () => {
    const queue = await queueFor(uniqueName('q'));
    const occurrence = new Date(Math.ceil((Date.now() + 5000) / 1000) * 1000);
    const early = startCommand('cronq-injector', {
      env: injectorEnv({ CRONQ_INJECTOR_LEAD_MS: '3000', CRONQ_HOSTNAME: 'lead-test' }),
    });
    try {
      await early.waitForLine('injector running', 30_000);
      const [id] = await insertJobs(tdb.db, [
        {
          name: uniqueName('ahead'),
          schedule: `R/${occurrence.toISOString()}/PT1H`,
          nextRun: occurrence,
          routingKey: queue,
          command: 'true',
        },
      ]);
      const [msg] = await messagesIn(queue);
      const seenAt = Date.now();
      assert.ok(
        seenAt < occurrence.getTime(),
        `published ${seenAt - occurrence.getTime()} ms late`,
      );
      assert.equal(msg!.scheduled_for, occurrence.toISOString());
      assert.equal(msg!.trigger, 'schedule');
      const run = (await runsOf(tdb.db)).find((r) => r.job_id === id)!;
      assert.match(run.claimed_by!, /^lead-test\./);
      const ahead = occurrence.getTime() - run.queued_at.getTime();
      assert.ok(ahead > 500 && ahead <= 3000, `claimed ${ahead} ms ahead`);
      assert.equal(run.scheduled_for.getTime(), occurrence.getTime());
      const [job] = await tdb.db('jobs').where({ id }).select('next_run');
      assert.equal(job.next_run.getTime(), occurrence.getTime() + 3600_000);
    } finally {
      await early.stop();
    }
  });

  test('a due job whose routing key has no queue bound ends as a failed run with the reason, and is not retried', async () => {
    const key = uniqueName('nobody').slice(0, 32);
    const start = new Date(Date.now() - 1000);
    const [id] = await insertJobs(tdb.db, [
      {
        name: uniqueName('unbound'),
        schedule: `R/${start.toISOString()}/PT1H`,
        nextRun: start,
        routingKey: key,
      },
    ]);
    const run = await waitFor(
      async () => (await runsOf(tdb.db)).find((r) => r.job_id === id && r.status === 'failed'),
      { message: 'failed run' },
    );
    assert.equal(run.reason, `no queue bound for routing key ${key}`);
    const [job] = await tdb.db('jobs').where({ id }).select('last_run_status', 'current_status');
    assert.equal(job.last_run_status, 'failed');
    assert.equal(job.current_status, 'failed');
    const [{ finished }] = await tdb
      .db('runs')
      .where({ run_id: run.run_id })
      .select(tdb.db.raw('finished_at IS NOT NULL AS finished'));
    assert.equal(Number(finished), 1);
    assert.equal((await runsOf(tdb.db)).filter((r) => r.job_id === id).length, 1);
  });

  test('run_now set in the database is picked up within the poll interval, without moving next_run', async () => {
    const queue = await queueFor(uniqueName('q'));
    const later = new Date(Date.now() + 86_400_000);
    const [id] = await insertJobs(tdb.db, [
      {
        name: uniqueName('manual'),
        schedule: `R/${later.toISOString()}/P1D`,
        nextRun: later,
        routingKey: queue,
      },
    ]);
    const setAt = Date.now();
    await tdb.db('jobs').where({ id }).update({ run_now: 1 });
    const msgs = await messagesIn(queue, { intervalMs: 10, timeoutMs: 5000 });
    const tookMs = Date.now() - setAt;
    assert.ok(tookMs < MAX_POLL_MS + 500, `picked up after ${tookMs} ms`);
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]!.trigger, 'manual');
    const [job] = await tdb.db('jobs').where({ id }).select('run_now', 'next_run');
    assert.equal(job.run_now, 0);
    assert.equal(job.next_run.getTime(), later.getTime());
    const runs = (await runsOf(tdb.db)).filter((r) => r.job_id === id);
    assert.deepEqual(
      runs.map((r) => r.triggered_by),
      ['manual'],
    );
  });

  test('a bounded schedule (R3/...) covers its three occurrences, then shows as ended and gets no further runs', async () => {
    const queue = await queueFor(uniqueName('q'));
    const start = nextWholeSecond(300);
    const [id] = await insertJobs(tdb.db, [
      {
        name: uniqueName('bounded'),
        schedule: `R3/${start.toISOString()}/PT1S`,
        nextRun: start,
        routingKey: queue,
      },
    ]);
    const job = await waitFor(
      async () =>
        (
          await tdb.db('jobs').where({ id }).whereNotNull('ended_at').select('ended_at', 'next_run')
        )[0],
      { timeoutMs: 8000 },
    );
    assert.equal(job.next_run, null);
    // A further second: nothing more may come.
    await waitFor(async () => Date.now() > start.getTime() + 4000, { timeoutMs: 6000 });
    const runs = (await runsOf(tdb.db)).filter((r) => r.job_id === id);
    // Normally three runs at +0, +1 and +2 s; on a starved machine a late
    // claim coalesces an occurrence into the run before it (counted in
    // `missed`). Either way the three occurrences are covered, once each.
    for (const r of runs) assert.equal((r.scheduled_for.getTime() - start.getTime()) % 1000, 0);
    assert.equal(
      runs.reduce((n, r) => n + 1 + r.missed, 0),
      3,
      JSON.stringify(runs),
    );
    assert.equal(runs[0]!.scheduled_for.getTime(), start.getTime());
    assert.equal((await drainQueue(conn, queue)).length, runs.length);
  });

  test('a job whose schedule cannot be parsed is skipped with one logged error, and other jobs still run', async () => {
    const queue = await queueFor(uniqueName('q'));
    const start = nextWholeSecond(200);
    const [badId, goodId] = await insertJobs(tdb.db, [
      {
        name: uniqueName('bad'),
        schedule: 'every now and then',
        nextRun: start,
        routingKey: queue,
      },
      {
        name: uniqueName('good'),
        schedule: `R/${start.toISOString()}/PT1S`,
        nextRun: start,
        routingKey: queue,
      },
    ]);
    await waitFor(
      async () => (await runsOf(tdb.db)).filter((r) => r.job_id === goodId).length >= 3,
      { timeoutMs: 8000, message: 'good job ran 3 times' },
    );
    const [bad] = await tdb.db('jobs').where({ id: badId }).select('schedule_error');
    assert.match(bad.schedule_error, /every now and then/);
    assert.equal((await runsOf(tdb.db)).filter((r) => r.job_id === badId).length, 0);
    const errors = injector
      .lines()
      .filter((l) => l.includes('"level":"error"') && l.includes(`"job_id":${badId},`));
    assert.equal(errors.length, 1, errors.join('\n'));
    // Runs are on time: normally tens of ms after their occurrence (bench/injector.ts
    // measures it); the bound here only leaves room for a busy test machine.
    for (const r of (await runsOf(tdb.db)).filter((x) => x.job_id === goodId && x.published_at)) {
      assert.ok(
        r.published_at!.getTime() - r.scheduled_for.getTime() < 2 * MAX_POLL_MS,
        `lag ${r.published_at!.getTime() - r.scheduled_for.getTime()} ms`,
      );
    }
  });

  test('a bad setting exits 2 with one line naming it', async () => {
    const r = await runCommand('cronq-injector', {
      env: { DATABASE_URL: tdb.url, RABBITMQ_URL: vh.url, CRONQ_INJECTOR_BATCH_SIZE: 'lots' },
    });
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /CRONQ_INJECTOR_BATCH_SIZE/);
    const f = await runCommand('cronq-injector', {
      args: ['--max-poll-ms', '0'],
      env: { DATABASE_URL: tdb.url },
    });
    assert.equal(f.code, 2);
    assert.match(f.stderr, /CRONQ_INJECTOR_MAX_POLL_MS/);
    const lead = await runCommand('cronq-injector', {
      args: ['--lead-ms', '6000'],
      env: { DATABASE_URL: tdb.url },
    });
    assert.equal(lead.code, 2);
    assert.equal(lead.stderr.trim().split('\n').length, 1);
    assert.match(lead.stderr, /CRONQ_INJECTOR_LEAD_MS/);
  });

  test('--help lists the flags and exits 0', async () => {
    const r = await runCommand('cronq-injector', { args: ['--help'] });
    assert.equal(r.code, 0);
    for (const flag of ['--batch-size', '--max-poll-ms', '--lead-ms', '--log-level', '--verbose'])
      assert.ok(r.stdout.includes(flag), flag);
  });

  test('SIGTERM finishes the batch in hand and exits 0', async () => {
    const r = await injector.stop(15_000);
    assert.equal(r.code, 0);
    assert.ok(injector.lines().some((l) => l.includes('injector stopped')));
  });
});
