import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, useServices } from '../helpers/services';
import { type Proc } from '../helpers/processes';
import {
  connectWithJobQueue,
  drainQueue,
  insertJobs,
  nextWholeSecond,
  runsOf,
  startInjector,
} from '../helpers/injector';

const JOBS = 500;
const OCCURRENCES = 10;

const svc = useServices();
const injectors: Proc[] = [];

test(
  'three injectors against 500 PT1S jobs for 10 s publish every (job, occurrence) exactly once',
  { timeout: 90_000 },
  async () => {
    const conn = await connectWithJobQueue(svc.vhost);
    injectors.push(
      ...(await Promise.all(
        [1, 2, 3].map(async () => svc.track(await startInjector(svc.db, svc.vhost))),
      )),
    );

    const start = nextWholeSecond(2000);
    const ids = await insertJobs(
      svc.db.db,
      Array.from({ length: JOBS }, (_, i) => ({
        name: `multi-${i}`,
        schedule: `R${OCCURRENCES}/${start.toISOString()}/PT1S`,
        nextRun: start,
      })),
    );
    const expected = JOBS * OCCURRENCES;
    await waitFor(
      async () =>
        Number((await svc.db.db('runs').whereNotNull('published_at').count({ n: '*' }))[0]!.n) >=
        expected,
      {
        timeoutMs: 40_000,
        intervalMs: 250,
        message: `${expected} published runs`,
      },
    );
    // Every job has ended; nothing more can come. Stop the injectors (each exits 0).
    for (const p of injectors) assert.equal((await p.stop()).code, 0);

    const runs = await runsOf(svc.db.db);
    assert.equal(runs.length, expected, 'one run per (job, occurrence)');
    const want = new Set<string>();
    for (const id of ids)
      for (let k = 0; k < OCCURRENCES; k++) want.add(`${id}@${start.getTime() + k * 1000}`);
    const got = new Set(runs.map((r) => `${r.job_id}@${r.scheduled_for.getTime()}`));
    assert.equal(got.size, expected);
    for (const k of want) assert.ok(got.has(k), `missing run ${k}`);
    assert.equal(
      runs.reduce((s, r) => s + r.missed, 0),
      0,
      'no occurrence skipped',
    );
    assert.ok(runs.every((r) => r.status === 'queued' && r.published_at !== null));

    // What the queue holds: each run's message once, under the run's id.
    const msgs = await drainQueue(conn, 'cronq_jobs');
    assert.equal(msgs.length, expected, 'messages in the queue');
    const byRun = new Map(runs.map((r) => [r.run_id, r]));
    const seen = new Set<string>();
    for (const m of msgs) {
      assert.ok(!seen.has(m.run_id), `run ${m.run_id} published twice`);
      seen.add(m.run_id);
      const r = byRun.get(m.run_id);
      assert.ok(r, `message for unknown run ${m.run_id}`);
      assert.equal(m.job_id, r.job_id);
      assert.equal(new Date(m.scheduled_for).getTime(), r.scheduled_for.getTime());
    }
    // The work was shared: each injector claimed some of it.
    const claimants = await svc.db.db('runs').distinct('claimed_by');
    assert.ok(claimants.length >= 2, `claimed by ${claimants.length} injector(s)`);
    const lags = runs
      .map((r) => r.published_at!.getTime() - r.scheduled_for.getTime())
      .sort((a, b) => a - b);
    console.log(
      `dispatch lag p50 ${lags[Math.floor(lags.length / 2)]} ms, p99 ${lags[Math.floor(lags.length * 0.99)]} ms, claimants ${claimants.length}`,
    );
  },
);
