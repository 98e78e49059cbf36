import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor, useServices } from '../helpers/services';
import type { Proc } from '../helpers/processes';
import {
  connectWithJobQueue,
  insertJobs,
  nextWholeSecond,
  startInjector,
} from '../helpers/injector';
import { dbNow, ledger, tilingProblems } from '../helpers/policies';

/**
 * catch_up with the real injector: three PT1S jobs run, the injector is
 * stopped for several periods and started again, and the first claim after
 * the restart does what each job's catch_up says.
 */

const svc = useServices();

test(
  'catch_up once, skip and all after the injector was stopped for several periods',
  { timeout: 90_000 },
  async () => {
    const db = svc.db.db;
    const conn = await connectWithJobQueue(svc.vhost);
    let injector: Proc = svc.track(await startInjector(svc.db, svc.vhost));
    const start = nextWholeSecond(2000);
    const names = ['cu-once', 'cu-skip', 'cu-all'];
    const [once, skip, all] = await insertJobs(
      db,
      names.map((name) => ({ name, schedule: `R/${start.toISOString()}/PT1S`, nextRun: start })),
    );
    const policies: Record<number, object> = {
      [once!]: { catch_up: 'once' },
      [skip!]: { catch_up: 'skip' },
      [all!]: { catch_up: 'all', catch_up_limit: 3 },
    };
    for (const [id, p] of Object.entries(policies))
      await db('jobs')
        .where({ id: Number(id) })
        .update({ policies: JSON.stringify(p) });

    // Each job runs normally first, whatever its catch_up.
    await waitFor(
      async () => {
        for (const id of [once!, skip!, all!]) {
          const rows = await ledger(db, id);
          if (rows.filter((r) => r.status === 'queued' && r.published_at).length < 2) return false;
        }
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: 'two runs of each job' },
    );
    assert.equal((await injector.stop()).code, 0);
    await new Promise((r) => setTimeout(r, 6000));
    const restartedAt = await dbNow(db);
    injector = svc.track(await startInjector(svc.db, svc.vhost));
    // The first claim after the restart, and a normal one after it.
    await waitFor(
      async () => {
        for (const id of [once!, skip!, all!]) {
          const rows = await ledger(db, id);
          const after = new Set(
            rows.filter((r) => r.queued_at >= restartedAt).map((r) => r.queued_at.getTime()),
          );
          if (after.size < 2) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'two claims of each job after the restart' },
    );
    assert.equal((await injector.stop()).code, 0);

    const gapClaim = async (id: number) => {
      const rows = await ledger(db, id);
      assert.deepEqual(
        tilingProblems(rows, 1000),
        [],
        `job ${id}'s occurrences are each covered once`,
      );
      const before = rows.filter((r) => r.queued_at < restartedAt);
      const after = rows.filter((r) => r.queued_at >= restartedAt);
      const first = Math.min(...after.map((r) => r.queued_at.getTime()));
      return {
        rows,
        lastBefore: before[before.length - 1]!,
        claim: after.filter((r) => r.queued_at.getTime() === first),
      };
    };

    // once: one run for the oldest missed occurrence, the others counted on it.
    const o = await gapClaim(once!);
    assert.deepEqual(
      o.claim.map((r) => r.status),
      ['queued'],
    );
    assert.equal(o.claim[0]!.scheduled_for.getTime(), o.lastBefore.scheduled_for.getTime() + 1000);
    assert.ok(o.claim[0]!.missed >= 4, `once counted ${o.claim[0]!.missed}`);
    assert.ok(o.rows.every((r) => r.status === 'queued'));

    // skip: none of them runs; one missed run records how many.
    const s = await gapClaim(skip!);
    assert.deepEqual(
      s.claim.map((r) => r.status),
      ['missed'],
    );
    const m = s.claim[0]!;
    assert.equal(m.scheduled_for.getTime(), s.lastBefore.scheduled_for.getTime() + 1000);
    assert.ok(m.missed >= 5, `skip recorded ${m.missed}`);
    assert.equal(
      m.reason,
      `${m.missed} occurrences missed while nothing could run them (catch_up: skip)`,
    );
    assert.equal(m.published_at, null);

    // all: the oldest three run, the rest are one missed run.
    const a = await gapClaim(all!);
    assert.deepEqual(
      a.claim.map((r) => r.status),
      ['queued', 'queued', 'queued', 'missed'],
    );
    const base = a.lastBefore.scheduled_for.getTime();
    assert.deepEqual(
      a.claim.map((r) => r.scheduled_for.getTime() - base),
      [1000, 2000, 3000, 4000],
    );
    assert.ok(a.claim.slice(0, 3).every((r) => r.published_at !== null && r.missed === 0));
    assert.ok(a.claim[3]!.missed >= 2);
    assert.match(a.claim[3]!.reason!, /catch_up: all, at most 3/);
    await conn.close();
  },
);

test(
  'catch_up all at its largest limit: two jobs 1,500 occurrences behind get 1,000 runs each in one claim',
  { timeout: 90_000 },
  async () => {
    const db = svc.db.db;
    const conn = await connectWithJobQueue(svc.vhost);
    const now = await dbNow(db);
    const first = new Date(Math.floor(now.getTime() / 1000) * 1000 - 1_500_000);
    const ids = await insertJobs(
      db,
      ['cu-all-a', 'cu-all-b'].map((name) => ({
        name,
        schedule: `R/${first.toISOString()}/PT1S`,
        nextRun: first,
      })),
      'catch-up-large',
    );
    await db('jobs')
      .whereIn('id', ids)
      .update({ policies: JSON.stringify({ catch_up: 'all', catch_up_limit: 1000 }) });
    svc.track(await startInjector(svc.db, svc.vhost));
    for (const id of ids) {
      const rows = await waitFor(
        async () => {
          const r = await ledger(db, id);
          const published = r.filter((x) => x.status === 'queued' && x.published_at);
          return published.length >= 1000 ? r : undefined;
        },
        { timeoutMs: 40_000, intervalMs: 250, message: `1,000 runs of job ${id}` },
      );
      const claim = rows.filter((r) => r.queued_at.getTime() === rows[0]!.queued_at.getTime());
      assert.equal(claim.filter((r) => r.status === 'queued').length, 1000);
      const missed = claim.filter((r) => r.status === 'missed');
      assert.equal(missed.length, 1);
      assert.equal(missed[0]!.scheduled_for.getTime(), first.getTime() + 1_000_000);
      assert.ok(missed[0]!.missed >= 500);
      assert.deepEqual(tilingProblems(rows, 1000), []);
    }
    await conn.close();
  },
);
