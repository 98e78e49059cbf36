import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createTestDatabase,
  createTestVhost,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import { startInjector } from '../helpers/injector';
import { dbNow } from '../helpers/policies';
import { startReceiver, type Receiver } from '../helpers/notify';
import { parseCategory } from '../../src/core/category';
import { createDb, type Knex } from '../../src/core/db';
import { parseDatabaseUrl } from '../../src/core/config';
import { newRunId } from '../../src/core/runs';
import { applyCategory } from '../../src/web/category-store';
import { claimDueJobs } from '../../src/injector';
import { takeMissedNotices } from '../../src/results/notify/missed';
import { moveOutbox } from '../../src/results/notify/outbox';

/**
 * Runs the injector records `missed` itself (catch_up skip after it was
 * away, a starting deadline already passed when claimed) notify like any
 * failure: the claim writes a notice (run_notices) with the run, and
 * cronq-results turns it into the `missed` notification, once, with any
 * number of consumers. Real cronq-injector and cronq-results processes, a
 * webhook receiver started here; each test has its own database and vhost.
 */

let receiver: Receiver;
const cleanup: Array<() => Promise<unknown>> = [];
const HOUR = 3600_000;
const SCHEDULE = 'R/2024-01-01T00:00:00Z/PT1H';

before(async () => {
  receiver = await startReceiver();
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await receiver?.close();
});

async function services(): Promise<{ tdb: TestDatabase; vhost: TestVhost }> {
  const [tdb, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  cleanup.push(
    () => tdb.drop(),
    () => vhost.drop(),
  );
  return { tdb, vhost };
}

/** A category whose targets hear only of `missed`, at `path` on the receiver; returns job ids by name. */
async function category(
  db: Knex,
  path: string,
  jobs: Array<Record<string, unknown>>,
  target: Record<string, unknown> = {},
): Promise<Map<string, number>> {
  const name = path.slice(1);
  await applyCategory(
    db,
    name,
    parseCategory({
      category: name,
      notify: [{ on: ['missed'], webhook: `${receiver.url}${path}`, ...target }],
      jobs: jobs.map((j) => ({ schedule: SCHEDULE, command: 'true', ...j })),
    }),
  );
  const rows = (await db('jobs').select('id', 'name')) as Array<{ id: number; name: string }>;
  return new Map(rows.map((r) => [r.name, Number(r.id)]));
}

/** As if the injector had been away for three hours: each job's next occurrence lies that far back. */
async function awayForThreeHours(db: Knex): Promise<void> {
  const now = (await dbNow(db)).getTime();
  await db('jobs').update({ next_run: new Date(Math.floor(now / HOUR) * HOUR - 3 * HOUR) });
}

function consumer(tdb: TestDatabase, vhost: TestVhost): Proc {
  const p = startCommand('cronq-results', {
    env: {
      DATABASE_URL: tdb.url,
      RABBITMQ_URL: vhost.url,
      CRONQ_NOTIFY_POLL_MS: '50',
    },
  });
  cleanup.push(() => p.stop());
  return p;
}

async function missedRunOf(db: Knex): Promise<Map<number, string>> {
  const rows = (await db('runs').where({ status: 'missed' }).select('job_id', 'run_id')) as Array<{
    job_id: number;
    run_id: string;
  }>;
  return new Map(rows.map((r) => [Number(r.job_id), r.run_id]));
}

const receivedAt = (path: string) => receiver.received.filter((r) => r.path === path);

/** A little longer than a take, a claim and a send, so a second notification would have come. */
const settle = () => new Promise((r) => setTimeout(r, 2500));

describe('runs the injector records missed are notified', () => {
  test('catch_up skip after the injector was away, and a run past its starting deadline: the receiver gets one `missed` notification for each, naming the run', async () => {
    const { tdb, vhost } = await services();
    const ids = await category(tdb.db, '/one', [
      { name: 'skipped while away', catch_up: 'skip' },
      { name: 'past its deadline', starting_deadline: 'PT1M' },
    ]);
    await awayForThreeHours(tdb.db);
    const results = consumer(tdb, vhost);
    await results.waitForLine('consuming results', 30_000);
    const injector = await startInjector(tdb, vhost);
    cleanup.push(() => injector.stop());

    await waitFor(() => receivedAt('/one').length >= 2, {
      timeoutMs: 30_000,
      message: 'two missed notifications',
    });
    await settle();
    const got = receivedAt('/one');
    assert.equal(got.length, 2, 'one notification per missed run');
    const runs = await missedRunOf(tdb.db);
    assert.equal(runs.size, 2, 'the injector recorded one missed run per job');
    for (const [name, jobId] of ids) {
      const post = got.find((r) => r.json.job.id === jobId);
      assert.ok(post, `${name} notified`);
      assert.equal(post.json.event, 'missed');
      assert.equal(post.json.job.name, name);
      assert.equal(post.json.run?.id, runs.get(jobId), `${name}'s notification names its run`);
      assert.equal(post.json.run?.status, 'missed');
      assert.equal(post.json.failures, 1);
    }
    assert.equal(Number((await tdb.db('run_notices').count('* as n'))[0]!.n), 0, 'notices taken');
    const rows = await tdb.db('notifications').select('run_id', 'event', 'state');
    assert.deepEqual(
      rows.map((r) => [r.event, r.state]),
      [
        ['missed', 'sent'],
        ['missed', 'sent'],
      ],
    );
  });

  test('two results consumers on the same database notify each missed run once', async () => {
    const { tdb, vhost } = await services();
    const names = Array.from({ length: 12 }, (_, i) => `away ${i}`);
    await category(
      tdb.db,
      '/two',
      names.map((name) => ({ name, catch_up: 'skip' })),
    );
    await awayForThreeHours(tdb.db);
    const a = consumer(tdb, vhost);
    const b = consumer(tdb, vhost);
    await Promise.all([
      a.waitForLine('consuming results', 30_000),
      b.waitForLine('consuming results', 30_000),
    ]);
    const injector = await startInjector(tdb, vhost);
    cleanup.push(() => injector.stop());

    await waitFor(() => receivedAt('/two').length >= names.length, {
      timeoutMs: 30_000,
      message: 'a missed notification for each job',
    });
    await settle();
    const got = receivedAt('/two');
    const runs = await missedRunOf(tdb.db);
    assert.equal(runs.size, names.length);
    assert.equal(got.length, names.length, 'one POST per missed run');
    assert.deepEqual(new Set(got.map((r) => r.json.run?.id)), new Set(runs.values()));
    assert.equal(Number((await tdb.db('notifications').count('* as n'))[0]!.n), names.length);
  });
});

describe('the notices themselves', () => {
  test("the claim writes a notice for each run it records missed, in the run's transaction, and none for a skipped or published run", async () => {
    const { tdb } = await services();
    const ids = await category(tdb.db, '/claim', [
      { name: 'skip', catch_up: 'skip' },
      { name: 'deadline', starting_deadline: 'PT1M' },
      { name: 'forbid', overlap: 'forbid' },
      { name: 'once' },
    ]);
    await awayForThreeHours(tdb.db);
    // forbid's previous run is still going: its occurrence is recorded skipped.
    const going = newRunId();
    const forbid = ids.get('forbid')!;
    await tdb.db('runs').insert({
      run_id: going,
      job_id: forbid,
      scheduled_for: new Date(Date.now() - 5 * HOUR),
      status: 'running',
      queued_at: new Date(Date.now() - 5 * HOUR),
    });
    await tdb.db('jobs').where({ id: forbid }).update({ active_run_id: going });

    const claim = await claimDueJobs(tdb.db, {
      batchSize: 10,
      includeRunNow: false,
      claimant: 't',
    });
    assert.deepEqual(claim.recorded.map((r) => [r.jobName, r.status]).sort(), [
      ['deadline', 'missed'],
      ['forbid', 'skipped'],
      ['skip', 'missed'],
    ]);
    const notices = await tdb.db('run_notices').select('run_id', 'job_id', 'created_at');
    const missed = await tdb
      .db('runs')
      .where({ status: 'missed' })
      .select('run_id', 'job_id', 'queued_at');
    assert.deepEqual(
      notices.map((n) => [n.run_id, Number(n.job_id), n.created_at.getTime()]).sort(),
      missed.map((r) => [r.run_id, Number(r.job_id), r.queued_at.getTime()]).sort(),
    );
    assert.equal(notices.length, 2);

    // The next claim misses nothing and writes no notice.
    await tdb.db('jobs').update({ next_run: new Date(Date.now() - 1000), active_run_id: null });
    const again = await claimDueJobs(tdb.db, {
      batchSize: 10,
      includeRunNow: false,
      claimant: 't',
    });
    assert.equal(again.runs.length, 4, 'each job runs: on time, nothing missed, nothing going');
    assert.equal(again.recorded.length, 0);
    assert.equal(Number((await tdb.db('run_notices').count('* as n'))[0]!.n), 2);
  });

  test("two takers at once write each notice once; a job that keeps missing notifies once per repeat_after, counting; a removed job's notice is deleted", async () => {
    const { tdb } = await services();
    const names = Array.from({ length: 30 }, (_, i) => `keeps missing ${i}`);
    const ids = await category(
      tdb.db,
      '/storm',
      names.map((name) => ({ name })),
      { repeat_after: 'PT1H' },
    );
    const now = (await dbNow(tdb.db)).getTime();
    const notices = [...ids.values()].flatMap((jobId) =>
      [0, 1].map((k) => ({
        run_id: newRunId(),
        job_id: jobId,
        created_at: new Date(now - 2000 + k),
      })),
    );
    notices.push({ run_id: newRunId(), job_id: 999_999, created_at: new Date(now - 3000) });
    await tdb.db('run_notices').insert(notices);

    // A second pool, as a second cronq-results has; small takes so the two interleave.
    const other = createDb(parseDatabaseUrl(tdb.url), { poolMax: 2 });
    cleanup.push(() => other.destroy());
    const drain = async (db: Knex) => {
      const taken: string[] = [];
      let gone = 0;
      for (;;) {
        const t = await takeMissedNotices(db, [], 7);
        if (t.notices === 0 && Number((await db('run_notices').count('* as n'))[0]!.n) === 0)
          return { taken, gone };
        taken.push(...t.runIds);
        gone += t.gone;
      }
    };
    const [x, y] = await Promise.all([drain(tdb.db), drain(other)]);
    assert.equal(x.taken.length + y.taken.length, 60, 'every notice of a job taken');
    assert.equal(new Set([...x.taken, ...y.taken]).size, 60, 'none taken twice');
    assert.equal(x.gone + y.gone, 1, "the removed job's notice deleted");

    // What they wrote waits in the outbox until a sender moves it (docs/notifications.md).
    while ((await moveOutbox(tdb.db)).rows > 0);
    const rows = await tdb.db('notifications').select('job_id', 'event', 'failures');
    assert.equal(rows.length, 30, 'the first miss of each job notifies; the second is held back');
    assert.ok(rows.every((r) => r.event === 'missed' && r.failures === 1));
    const jobs = await tdb
      .db('jobs')
      .whereIn('id', [...ids.values()])
      .select('failures', 'failing_since');
    assert.ok(
      jobs.every((j) => j.failures === 2 && j.failing_since !== null),
      'both misses counted in the streak',
    );
  });
});
