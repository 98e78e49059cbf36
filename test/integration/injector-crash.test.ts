import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChannelModel } from 'amqplib';
import {
  createTestDatabase,
  createTestVhost,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { startCommand, type Proc } from '../helpers/processes';
import { bindQueue, drainQueue, insertJobs, runsOf } from '../helpers/injector';

/**
 * The outbox guarantee under a crash: a run is committed before it is
 * published, so an injector killed in the middle of a batch leaves runs
 * that another injector publishes later under the same run ids. Nothing is
 * lost; a duplicate (killed after the broker confirmed, before published_at
 * was written) is the same run, never a second one.
 */
const JOBS = 200;

let tdb: TestDatabase;
let vh: TestVhost;
let conn: ChannelModel;
const procs: Proc[] = [];

before(async () => {
  tdb = await createTestDatabase();
  vh = await createTestVhost();
  conn = await vh.connect();
  const ch = await conn.createChannel();
  await bindQueue(ch, 'cronq_jobs', 'default');
  await ch.close();
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await vh?.drop();
  await tdb?.drop();
});

function injector(extra: Record<string, string>): Proc {
  const p = startCommand('cronq-injector', {
    env: { DATABASE_URL: tdb.url, RABBITMQ_URL: vh.url, CRONQ_LOG_LEVEL: 'info', ...extra },
  });
  procs.push(p);
  return p;
}

async function dueJobs(prefix: string): Promise<number[]> {
  const start = new Date(Date.now() - 2000);
  return insertJobs(
    tdb.db,
    Array.from({ length: JOBS }, (_, i) => ({
      name: `${prefix}-${i}`,
      schedule: `R/${start.toISOString()}/PT1H`,
      nextRun: start,
    })),
    prefix,
  );
}

async function publishedCount(ids: number[]): Promise<number> {
  const [{ n }] = await tdb
    .db('runs')
    .whereIn('job_id', ids)
    .whereNotNull('published_at')
    .count({ n: '*' });
  return Number(n);
}

test(
  'an injector killed after its claim committed and before publishing loses no occurrence: another publishes the runs under the same ids',
  { timeout: 60_000 },
  async () => {
    const a = injector({ CRONQ_INJECTOR_TEST_PAUSE_AFTER_COMMIT_MS: '60000' });
    await a.waitForLine('injector running', 30_000);
    const ids = await dueJobs('commit');
    await a.waitForLine('TEST pause after commit', 15_000);
    a.kill('SIGKILL');
    await a.exited;

    const before = (await runsOf(tdb.db)).filter((r) => ids.includes(r.job_id));
    assert.equal(before.length, JOBS, 'the claim committed one run per job');
    assert.ok(before.every((r) => r.published_at === null && r.status === 'queued'));
    assert.equal(
      (await drainQueue(conn, 'cronq_jobs')).length,
      0,
      'nothing was published before the kill',
    );
    // The jobs moved on: they are not due again, so only the outbox can bring their runs out.
    const [{ due }] = await tdb
      .db('jobs')
      .whereIn('id', ids)
      .where('next_run', '<', new Date())
      .count({ due: '*' });
    assert.equal(Number(due), 0);

    const b = injector({ CRONQ_INJECTOR_REPUBLISH_AFTER_MS: '1000' });
    await b.waitForLine('injector running', 30_000);
    await waitFor(async () => (await publishedCount(ids)) === JOBS, {
      timeoutMs: 20_000,
      message: 'all runs published by the second injector',
    });
    const msgs = await drainQueue(conn, 'cronq_jobs');
    assert.equal(msgs.length, JOBS);
    assert.deepEqual(
      new Set(msgs.map((m) => m.run_id)),
      new Set(before.map((r) => r.run_id)),
      'the same run ids',
    );
    assert.equal(
      (await runsOf(tdb.db)).filter((r) => ids.includes(r.job_id)).length,
      JOBS,
      'no second run',
    );
    assert.equal((await b.stop()).code, 0);
  },
);

test(
  'an injector killed after the broker confirmed and before recording it publishes a duplicate only under the same run id',
  { timeout: 60_000 },
  async () => {
    const a = injector({ CRONQ_INJECTOR_TEST_PAUSE_AFTER_CONFIRM_MS: '60000' });
    await a.waitForLine('injector running', 30_000);
    const ids = await dueJobs('confirm');
    await a.waitForLine('TEST pause after confirm', 15_000);
    a.kill('SIGKILL');
    await a.exited;
    const runs = (await runsOf(tdb.db)).filter((r) => ids.includes(r.job_id));
    assert.equal(runs.length, JOBS);

    const b = injector({ CRONQ_INJECTOR_REPUBLISH_AFTER_MS: '1000' });
    await b.waitForLine('injector running', 30_000);
    await waitFor(async () => (await publishedCount(ids)) === JOBS, {
      timeoutMs: 20_000,
      message: 'all runs recorded as published',
    });
    assert.equal((await b.stop()).code, 0);

    const msgs = await drainQueue(conn, 'cronq_jobs');
    const byRun = new Map(runs.map((r) => [r.run_id, r]));
    const perRun = new Map<string, number>();
    for (const m of msgs) {
      const r = byRun.get(m.run_id);
      assert.ok(r, `message for an unknown run ${m.run_id}`);
      assert.equal(m.job_id, r.job_id);
      assert.equal(new Date(m.scheduled_for).getTime(), r.scheduled_for.getTime());
      perRun.set(m.run_id, (perRun.get(m.run_id) ?? 0) + 1);
    }
    assert.equal(perRun.size, JOBS, 'every run reached the queue');
    assert.ok(
      [...perRun.values()].every((n) => n === 2),
      'each was published twice (before and after the kill), under one run id',
    );
    assert.equal(
      (await runsOf(tdb.db)).filter((r) => ids.includes(r.job_id)).length,
      JOBS,
      'still one run per occurrence',
    );
  },
);
