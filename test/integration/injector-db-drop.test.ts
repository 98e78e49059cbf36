import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, useServices } from '../helpers/services';
import { type Proc } from '../helpers/processes';
import {
  connectWithJobQueue,
  insertJobs,
  nextWholeSecond,
  runsOf,
  scheduleGaps,
  startInjector,
} from '../helpers/injector';
import { createDb } from '../../src/core/db';
import { parseDatabaseUrl } from '../../src/core/config';

/**
 * Database connections cut under the injector (only this test's own
 * database's connections are killed, so this is not disruptive): it logs,
 * backs off, resumes, and no occurrence is lost or doubled.
 */
const svc = useServices();
let injector: Proc | undefined;

test(
  'an injector whose database connections are killed again and again keeps going and loses no occurrence',
  { timeout: 60_000 },
  async () => {
    await connectWithJobQueue(svc.vhost);
    injector = await startInjector(svc.db, svc.vhost, {
      CRONQ_INJECTOR_REPUBLISH_AFTER_MS: '1000',
    });
    svc.track(injector);
    const start = nextWholeSecond(500);
    const ids = await insertJobs(
      svc.db.db,
      Array.from({ length: 100 }, (_, i) => ({
        name: `drop-${i}`,
        schedule: `R/${start.toISOString()}/PT1S`,
        nextRun: start,
      })),
    );

    // A separate admin connection: kills every connection to the test database but its own.
    const admin = createDb(parseDatabaseUrl(svc.db.url), { poolMax: 1 });
    try {
      const until = start.getTime() + 4000;
      let kills = 0;
      while (Date.now() < until) {
        const [rows] = (await admin.raw(
          'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
          [svc.db.name],
        )) as unknown as [Array<{ id: number }>];
        for (const r of rows) {
          await admin.raw(`KILL CONNECTION ${Number(r.id)}`).catch(() => undefined);
          kills += 1;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
      assert.ok(kills > 0, 'connections were killed');
    } finally {
      await admin.destroy();
    }
    const cutOver = Date.now();
    // Afterwards every job runs on, and whatever was cut mid-way is published.
    await waitFor(
      async () => {
        const runs = await runsOf(svc.db.db);
        const recent = new Set(
          runs
            .filter((r) => r.scheduled_for.getTime() > cutOver + 1000 && r.published_at)
            .map((r) => r.job_id),
        );
        const unpublished = runs.filter((r) => r.published_at === null).length;
        return recent.size === ids.length && unpublished === 0;
      },
      { timeoutMs: 20_000, message: 'jobs running again with every run published' },
    );
    assert.equal(injector.child.exitCode, null, 'the injector is still running');
    assert.equal((await injector.stop()).code, 0);
    const runs = (await runsOf(svc.db.db)).filter((r) => r.published_at !== null);
    assert.deepEqual(
      scheduleGaps(runs, 1000),
      [],
      'every occurrence is a run or counted as missed by one',
    );
    assert.ok(runs.every((r) => r.status === 'queued'));
  },
);
