import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
import { bindQueue, insertJobs, runsOf } from '../helpers/injector';
import { startTestWeb, type TestWeb } from '../helpers/web';

/**
 * Hole 2 of the hardening issue: one job's row must never stop the claim of
 * the others. Jobs that cannot be scheduled sit beside ordinary ones, written
 * straight into the database (as an older version or a person with SQL would)
 * and through the API; the real injector keeps publishing the ordinary jobs
 * and Run now, and each bad job ends or carries its schedule_error.
 */
describe('cronq-injector with jobs that cannot be scheduled', () => {
  let tdb: TestDatabase;
  let vh: TestVhost;
  let conn: ChannelModel;
  let injector: Proc;
  let web: TestWeb;
  const queue = 'poison_q';

  before(async () => {
    tdb = await createTestDatabase();
    vh = await createTestVhost();
    conn = await vh.connect();
    const ch = await conn.createChannel();
    await bindQueue(ch, queue, queue);
    await ch.close();
    web = await startTestWeb(tdb.db, tdb.url);
  });

  after(async () => {
    await injector?.stop();
    await web?.stop();
    await conn?.close().catch(() => undefined);
    await vh?.drop();
    await tdb?.drop();
  });

  async function job(id: number) {
    return (await tdb.db('jobs').where({ id }).first()) as {
      next_run: Date | null;
      ended_at: Date | null;
      schedule_error: string | null;
      run_now: number;
    };
  }

  test('ordinary jobs and Run now go on beside jobs whose next occurrence the database cannot store, and each bad job ends or is set aside', async () => {
    const now = Date.now();
    const soon = new Date(Math.ceil((now + 1500) / 1000) * 1000);
    const dueAt = new Date(now - 1000);
    const ids = await insertJobs(tdb.db, [
      // The ordinary jobs: every second from now on.
      {
        name: 'steady-a',
        schedule: `R/${dueAt.toISOString()}/PT1S`,
        nextRun: dueAt,
        routingKey: queue,
      },
      {
        name: 'steady-b',
        schedule: `R/${dueAt.toISOString()}/PT1S`,
        nextRun: dueAt,
        routingKey: queue,
      },
      // Runs once, then its next occurrence (year 10026) cannot be stored: it ends.
      {
        name: 'once-then-past-9999',
        schedule: `R/${soon.toISOString()}/P8000Y`,
        nextRun: soon,
        routingKey: queue,
      },
      // Already due, and its next occurrence (year 10024) cannot be stored.
      {
        name: 'due-then-past-9999',
        schedule: 'R/2024-01-01T00:00:00Z/P8000Y',
        nextRun: new Date('2024-01-01T00:00:00Z'),
        routingKey: queue,
      },
      // A schedule that no longer parses.
      { name: 'unreadable', schedule: 'every tuesday-ish', nextRun: dueAt, routingKey: queue },
      // ~3e10 occurrences behind: must be caught up in one step, not stepped through.
      {
        name: 'ancient-iso',
        schedule: 'R/1000-01-01T00:00:00Z/PT1S',
        nextRun: new Date('1000-01-01T00:00:00Z'),
        routingKey: queue,
      },
      // Cron with a next_run a thousand years back: counting its missed runs is bounded.
      {
        name: 'ancient-cron',
        schedule: '* * * * * *',
        nextRun: new Date('1000-01-01T00:00:00Z'),
        routingKey: queue,
      },
      // The row the database itself refuses to update (a trigger below).
      {
        name: 'refused-row',
        schedule: `R/${dueAt.toISOString()}/PT1S`,
        nextRun: dueAt,
        routingKey: queue,
      },
      {
        name: 'zero-date',
        schedule: 'R/2024-01-01T00:00:00Z/PT1H',
        nextRun: dueAt,
        routingKey: queue,
      },
      {
        name: 'run-now-target',
        schedule: 'R/2024-01-01T00:00:00Z/P1Y',
        nextRun: new Date('2027-01-01T00:00:00Z'),
        routingKey: queue,
      },
    ]);
    const [
      steadyA,
      steadyB,
      once,
      dueThenPast,
      unreadable,
      ancientIso,
      ancientCron,
      refused,
      zeroDate,
      runNowTarget,
    ] = ids as [number, number, number, number, number, number, number, number, number, number];
    // A zero date written in SQL: it sorts as due for ever.
    await tdb.db.raw("UPDATE jobs SET next_run = '0000-00-00 00:00:00' WHERE id = ?", [zeroDate]);
    // A real refusal by the database, for one row only, when its next_run moves.
    await tdb.db.raw(
      `CREATE TRIGGER refuse_one BEFORE UPDATE ON jobs FOR EACH ROW
         IF NEW.id = ${refused} AND NOT (NEW.next_run <=> OLD.next_run) THEN
           SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'this row is refused by a test trigger';
         END IF`,
    );

    injector = startCommand('cronq-injector', {
      env: {
        DATABASE_URL: tdb.url,
        RABBITMQ_URL: vh.url,
        CRONQ_INJECTOR_MAX_POLL_MS: '200',
        CRONQ_LOG_LEVEL: 'info',
      },
    });
    await injector.waitForLine('injector running', 30_000);

    // The ordinary jobs keep being published, run after run.
    await waitFor(
      async () => {
        const runs = (await runsOf(tdb.db)).filter((r) => r.job_id === steadyA && r.published_at);
        return runs.length >= 4;
      },
      { timeoutMs: 30_000, message: 'steady-a published at least 4 runs' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; injector output:\n${injector.output().slice(-4000)}`);
    });

    // Run now works while the bad jobs are there.
    await tdb.db('jobs').where({ id: runNowTarget }).update({ run_now: 1 });
    const manual = await waitFor(
      async () =>
        (await runsOf(tdb.db)).find(
          (r) => r.job_id === runNowTarget && r.triggered_by === 'manual' && r.published_at,
        ),
      { timeoutMs: 20_000, message: 'the Run now run published' },
    );
    assert.equal(manual.status, 'queued');

    // The job that ran once and cannot be scheduled again has ended, like an Rn/ schedule.
    const onceRow = await waitFor(
      async () => {
        const j = await job(once);
        return j.ended_at ? j : undefined;
      },
      { timeoutMs: 20_000, message: 'once-then-past-9999 ended' },
    );
    assert.equal(onceRow.next_run, null);
    assert.equal(onceRow.schedule_error, null);
    const dueRow = await job(dueThenPast);
    assert.ok(dueRow.ended_at, 'due-then-past-9999 ended');
    assert.equal(dueRow.next_run, null);

    const runs = await runsOf(tdb.db);
    const ofJob = (id: number) =>
      runs.filter((r) => r.job_id === id && r.triggered_by === 'schedule');
    assert.deepEqual(
      ofJob(once).map((r) => r.scheduled_for.toISOString()),
      [soon.toISOString()],
    );
    assert.deepEqual(
      ofJob(dueThenPast).map((r) => r.scheduled_for.toISOString()),
      ['2024-01-01T00:00:00.000Z'],
    );

    // The unreadable one carries its reason and has no run.
    const bad = await job(unreadable);
    assert.match(bad.schedule_error ?? '', /every tuesday-ish/);
    assert.equal(ofJob(unreadable).length, 0);

    // The ancient ones were caught up in one step each and keep running.
    for (const id of [ancientIso, ancientCron]) {
      const first = ofJob(id)[0];
      assert.ok(first, `job ${id} ran`);
      assert.equal(first.scheduled_for.toISOString(), '1000-01-01T00:00:00.000Z');
      assert.ok(
        first.missed > 1_000_000_000,
        `job ${id} counted its missed runs (${first.missed})`,
      );
      const row = await job(id);
      assert.equal(row.schedule_error, null);
      assert.ok(row.next_run && row.next_run.getTime() > now, `job ${id} was moved to now`);
    }

    // The refused row is set aside with the database's reason; the others were not held up by it.
    const refusedRow = await waitFor(async () => {
      const j = await job(refused);
      return j.schedule_error ? j : undefined;
    });
    assert.match(refusedRow.schedule_error!, /refused by a test trigger/);
    assert.doesNotMatch(refusedRow.schedule_error!, /UPDATE|JOIN|VALUES/);
    assert.ok(ofJob(steadyB).length >= 4, 'steady-b kept running too');
    assert.match((await job(zeroDate)).schedule_error ?? '', /no valid date/);

    // The log names the set-aside jobs with a bounded reason, never the batch statement and its values.
    const log = injector.output();
    assert.match(log, /refused by a test trigger/);
    assert.doesNotMatch(log, /UPDATE jobs j JOIN|WITH u \(id/);
    assert.doesNotMatch(log, /injector cycle failed/);
  });

  test('the API refuses a schedule whose next occurrence cannot be stored, in the dry run and the PUT alike, as cronq-validator does; one that ends after a first run is accepted', async () => {
    const body = (schedule: string) => ({
      category: 'far',
      jobs: [{ name: 'far', schedule, command: 'true' }],
    });
    const put = async (schedule: string, query = '') => {
      const res = await fetch(`${web.url}/api/category/far${query}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body(schedule)),
      });
      return { status: res.status, text: await res.text() };
    };
    for (const schedule of ['R/2024-01-01T00:00:00Z/P8000Y', 'R/9999-12-31T23:59:59-05:00/PT1H']) {
      const dry = await put(schedule, '?dry_run=1');
      assert.equal(dry.status, 400, `dry run of ${schedule}: ${dry.text}`);
      assert.match(dry.text, /9999-12-31T23:59:59\.999Z/);
      const real = await put(schedule);
      assert.equal(real.status, 400, `PUT of ${schedule}: ${real.text}`);
      assert.match(real.text, /9999-12-31T23:59:59\.999Z/);
      const file = path.join(os.tmpdir(), `${uniqueName('far')}.json`);
      writeFileSync(file, JSON.stringify(body(schedule)));
      const v = await runCommand('cronq-validator', { args: ['--config', file] });
      assert.equal(v.code, 1, `cronq-validator on ${schedule}: ${v.stdout}`);
      assert.match(v.stdout, /jobs\[0\]\.schedule: .*9999-12-31T23:59:59\.999Z/);
    }
    assert.equal(await tdb.db('jobs').where({ name: 'far' }).first(), undefined);

    // Runs once (a minute from now), then has ended: accepted.
    const start = new Date(Math.ceil((Date.now() + 60_000) / 1000) * 1000);
    const ok = await put(`R/${start.toISOString()}/P8000Y`);
    assert.equal(ok.status, 200, ok.text);
    const row = await tdb.db('jobs').where({ name: 'far' }).first();
    assert.equal(row.next_run.toISOString(), start.toISOString());
  });
});
