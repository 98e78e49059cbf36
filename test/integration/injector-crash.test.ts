import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { ChannelModel } from 'amqplib';
import {
  createTestDatabase,
  createTestVhost,
  waitFor,
  type TestDatabase,
  type TestVhost,
} from '../helpers/services';
import { cleanEnv, startCommand, type Proc } from '../helpers/processes';
import { bindQueue, drainQueue, insertJobs, runsOf } from '../helpers/injector';

/**
 * The outbox guarantee under a crash: a run is committed before it is
 * published, so an injector killed in the middle of a batch leaves runs
 * that another injector publishes later under the same run ids. Nothing is
 * lost; a duplicate (killed after the broker confirmed, before published_at
 * was written) is the same run, never a second one.
 *
 * The first injector is test/helpers/injector-crash-entry.ts: the real
 * Injector, which SIGKILLs itself from its own batch:committed or
 * batch:confirmed event, so it dies exactly at that point. The second is
 * the real cronq-injector command.
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

const CRASH_ENTRY = path.join(__dirname, '..', 'helpers', 'injector-crash-entry.ts');

/** Run an injector until it kills itself at `point`; resolves with how it ended and what it printed. */
function injectorCrashingAt(
  point: 'batch:committed' | 'batch:confirmed',
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CRASH_ENTRY, point], {
    env: { ...cleanEnv(), DATABASE_URL: tdb.url, RABBITMQ_URL: vh.url, CRONQ_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
  // Bounded so a crash point that is never reached fails the test instead of hanging it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

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
    const ids = await dueJobs('commit');
    const a = await injectorCrashingAt('batch:committed');
    assert.equal(a.signal, 'SIGKILL', `killed at the crash point; output:\n${a.output}`);

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
    // Generous: it includes the command's start, and the retake waits REPUBLISH_AFTER_MS first.
    await waitFor(async () => (await publishedCount(ids)) === JOBS, {
      timeoutMs: 40_000,
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
    const ids = await dueJobs('confirm');
    const a = await injectorCrashingAt('batch:confirmed');
    assert.equal(a.signal, 'SIGKILL', `killed at the crash point; output:\n${a.output}`);
    const runs = (await runsOf(tdb.db)).filter((r) => ids.includes(r.job_id));
    assert.equal(runs.length, JOBS);

    const b = injector({ CRONQ_INJECTOR_REPUBLISH_AFTER_MS: '1000' });
    // Generous: it includes the command's start, and the retake waits REPUBLISH_AFTER_MS first.
    await waitFor(async () => (await publishedCount(ids)) === JOBS, {
      timeoutMs: 40_000,
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
