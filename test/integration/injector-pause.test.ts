import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, useServices } from '../helpers/services';
import {
  connectWithJobQueue,
  insertJobs,
  nextWholeSecond,
  startInjector,
} from '../helpers/injector';
import { dbNow, ledger, tilingProblems } from '../helpers/policies';

/**
 * Pause and enabled with the real injector: a paused job (paused_at set in
 * SQL, as the API does) is not claimed and keeps its next_run; a manual run
 * still goes out; on resume its catch_up (skip here) decides about the
 * occurrences missed meanwhile. A disabled job is never claimed.
 */

const svc = useServices();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  'a paused job is not claimed; on resume catch_up decides; a disabled job never runs',
  { timeout: 90_000 },
  async () => {
    const db = svc.db.db;
    const conn = await connectWithJobQueue(svc.vhost);
    svc.track(await startInjector(svc.db, svc.vhost));
    const start = nextWholeSecond(2000);
    const [paused, disabled] = await insertJobs(db, [
      { name: 'pausable', schedule: `R/${start.toISOString()}/PT1S`, nextRun: start },
      { name: 'disabled', schedule: `R/${start.toISOString()}/PT1S`, nextRun: start },
    ]);
    await db('jobs')
      .where({ id: paused })
      .update({ policies: JSON.stringify({ catch_up: 'skip' }) });
    await db('jobs').where({ id: disabled }).update({ enabled: 0 });

    await waitFor(async () => (await ledger(db, paused!)).length >= 2, {
      timeoutMs: 20_000,
      intervalMs: 100,
      message: 'two runs before the pause',
    });
    await db.raw('UPDATE jobs SET paused_at = UTC_TIMESTAMP(3), paused_by = ? WHERE id = ?', [
      'test',
      paused,
    ]);
    const pausedAt = await dbNow(db);
    // A claim already under way when the pause was written may still finish.
    await sleep(1000);
    const settled = (await ledger(db, paused!)).length;
    const nextRun = (
      (await db('jobs').where({ id: paused }).first('next_run')) as { next_run: Date }
    ).next_run;
    await sleep(4000);
    assert.equal((await ledger(db, paused!)).length, settled, 'no run while paused');
    const still = (await db('jobs').where({ id: paused }).first('next_run')) as { next_run: Date };
    assert.equal(still.next_run.getTime(), nextRun.getTime(), 'next_run waits for the resume');

    // An operator's Run now goes out for a paused job.
    await db('jobs').where({ id: paused }).update({ run_now: 1 });
    const manual = await waitFor(
      async () => (await ledger(db, paused!)).find((r) => r.triggered_by === 'manual'),
      { timeoutMs: 10_000, intervalMs: 100, message: 'the manual run' },
    );
    await waitFor(
      async () =>
        (await ledger(db, paused!)).find((r) => r.run_id === manual.run_id)?.published_at != null,
      { timeoutMs: 10_000, intervalMs: 100, message: 'the manual run published' },
    );
    assert.equal(
      (await ledger(db, paused!)).filter((r) => r.triggered_by === 'schedule').length,
      settled,
      'still no scheduled run',
    );

    const resumedAt = await dbNow(db);
    await db('jobs').where({ id: paused }).update({ paused_at: null, paused_by: null });
    const rows = await waitFor(
      async () => {
        const r = (await ledger(db, paused!)).filter(
          (x) => x.triggered_by === 'schedule' && x.queued_at >= resumedAt,
        );
        return r.some((x) => x.status === 'queued' && x.published_at) ? r : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: 'runs again after the resume' },
    );
    // catch_up skip: the occurrences of the pause are one missed run, then the schedule goes on.
    const missed = rows.filter((r) => r.status === 'missed');
    assert.equal(missed.length, 1);
    const seconds = (resumedAt.getTime() - pausedAt.getTime()) / 1000;
    assert.ok(missed[0]!.missed >= seconds - 2, `${missed[0]!.missed} missed in ${seconds} s`);
    assert.match(missed[0]!.reason!, /catch_up: skip/);
    assert.deepEqual(tilingProblems(await ledger(db, paused!), 1000), []);

    assert.equal((await ledger(db, disabled!)).length, 0, 'the disabled job never ran');
    await conn.close();
  },
);
