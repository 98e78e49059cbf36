import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor, useServices } from '../helpers/services';
import { startCommand } from '../helpers/processes';
import { insertJobs, nextWholeSecond, startInjector } from '../helpers/injector';
import { DEFAULT_JOB_QUEUE } from '../../src/core/topology';

/**
 * overlap: forbid with the real daemons: three injectors claim one job
 * (`sleep 3` every second for 20 s), two runners with four slots each run
 * it, the results consumer records it. Without the rule, every occurrence
 * would start within its second and up to eight would run side by side.
 */

const svc = useServices();

interface RunTimes {
  run_id: string;
  scheduled_for: Date;
  status: string;
  reason: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  claimed_by: string | null;
}

/** Until n runners consume the default queue. */
async function runnersConsuming(n: number): Promise<void> {
  const conn = await svc.vhost.connect();
  await waitFor(
    async () => {
      // A passive check of a queue not there yet closes its channel: one channel per look.
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      try {
        return (await ch.checkQueue(DEFAULT_JOB_QUEUE)).consumerCount >= n;
      } catch {
        return false;
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
    { timeoutMs: 40_000, intervalMs: 200, message: `${n} runner(s) consuming` },
  );
  await conn.close().catch(() => undefined);
}

test(
  'overlap forbid with three injectors and two runners: runs of the job never overlap, the rest are recorded skipped',
  { timeout: 120_000 },
  async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'cronq-overlap-'));
    try {
      svc.track(
        startCommand('cronq-results', {
          env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url },
        }),
      );
      for (const host of ['overlap-a', 'overlap-b'])
        svc.track(
          startCommand('cronq-runner', {
            env: {
              RABBITMQ_URL: svc.vhost.url,
              CRONQ_CONCURRENCY: '4',
              LOG_PATH: path.join(tmp, host),
              CRONQ_RESULT_BUFFER_PATH: path.join(tmp, host, 'buffer'),
              CRONQ_HOSTNAME: host,
            },
          }),
        );
      await runnersConsuming(2);
      await Promise.all(
        [1, 2, 3].map(async () => svc.track(await startInjector(svc.db, svc.vhost))),
      );

      const start = nextWholeSecond(2000);
      const [jobId] = await insertJobs(svc.db.db, [
        {
          name: 'forbid-sleeper',
          schedule: `R20/${start.toISOString()}/PT1S`,
          nextRun: start,
          command: 'sleep 3',
        },
      ]);
      await svc.db
        .db('jobs')
        .where({ id: jobId })
        .update({
          policies: JSON.stringify({ overlap: 'forbid' }),
        });

      // All 20 occurrences recorded, and nothing left going.
      const runs = await waitFor(
        async () => {
          const rows = (await svc.db
            .db('runs')
            .where({ job_id: jobId })
            .orderBy('scheduled_for')
            .select(
              'run_id',
              'scheduled_for',
              'status',
              'reason',
              'started_at',
              'finished_at',
              'claimed_by',
            )) as RunTimes[];
          const going = rows.some((r) => r.status === 'queued' || r.status === 'running');
          return rows.length === 20 && !going ? rows : undefined;
        },
        { timeoutMs: 70_000, intervalMs: 250, message: '20 final runs' },
      );

      const ran = runs.filter((r) => r.status !== 'skipped');
      const skipped = runs.filter((r) => r.status === 'skipped');
      assert.ok(
        ran.every((r) => r.status === 'succeeded'),
        ran.map((r) => `${r.status}: ${r.reason}`).join('\n'),
      );
      // 3 s runs, an occurrence each second: about one in four runs.
      assert.ok(ran.length >= 3 && ran.length <= 7, `${ran.length} runs ran`);
      assert.equal(skipped.length, 20 - ran.length);
      const ids = new Set(runs.map((r) => r.run_id));
      for (const s of skipped) {
        const m = /^skipped: run ([0-9a-f]{32}) was still (queued|running)$/.exec(s.reason ?? '');
        assert.ok(m, `reason: ${s.reason}`);
        assert.ok(ids.has(m[1]!), 'names a run of the job');
        assert.equal(s.started_at, null);
      }
      const intervals = ran
        .map((r) => [r.started_at!.getTime(), r.finished_at!.getTime()] as const)
        .sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < intervals.length; i++)
        assert.ok(
          intervals[i]![0] >= intervals[i - 1]![1],
          `run ${i} started at ${intervals[i]![0]}, before run ${i - 1} ended at ${intervals[i - 1]![1]}`,
        );
      // The claims were shared (several injectors decided), and the job's pointer is clear.
      const claimants = new Set(runs.map((r) => r.claimed_by));
      console.log(`${ran.length} ran, ${skipped.length} skipped, ${claimants.size} claimant(s)`);
      const job = (await svc.db.db('jobs').where({ id: jobId }).first('active_run_id')) as {
        active_run_id: string | null;
      };
      assert.ok(
        job.active_run_id === null || ran.some((r) => r.run_id === job.active_run_id),
        'active_run_id names the last run or nothing',
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);

test(
  'overlap forbid is decided at the occurrence, not at the claim ahead of it: a run that ends before the next occurrence does not skip it',
  { timeout: 90_000 },
  async () => {
    // A lead of 1.5 s claims each occurrence of a PT2S job while the run
    // before it (sleep 0.8) is still going; decided then, every other
    // occurrence would be skipped. Decided at the occurrence, all run.
    const tmp = mkdtempSync(path.join(tmpdir(), 'cronq-overlap-lead-'));
    try {
      svc.track(
        startCommand('cronq-results', {
          env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url },
        }),
      );
      svc.track(
        startCommand('cronq-runner', {
          env: {
            RABBITMQ_URL: svc.vhost.url,
            CRONQ_CONCURRENCY: '2',
            LOG_PATH: tmp,
            CRONQ_RESULT_BUFFER_PATH: path.join(tmp, 'buffer'),
          },
        }),
      );
      await runnersConsuming(1);
      svc.track(await startInjector(svc.db, svc.vhost, { CRONQ_INJECTOR_LEAD_MS: '1500' }));

      const start = nextWholeSecond(2000);
      const [jobId] = await insertJobs(svc.db.db, [
        {
          name: 'forbid-lead',
          schedule: `R5/${start.toISOString()}/PT2S`,
          nextRun: start,
          command: 'sleep 0.8',
        },
      ]);
      await svc.db
        .db('jobs')
        .where({ id: jobId })
        .update({ policies: JSON.stringify({ overlap: 'forbid' }) });

      const runs = await waitFor(
        async () => {
          const rows = (await svc.db
            .db('runs')
            .where({ job_id: jobId })
            .orderBy('scheduled_for')
            .select('status', 'reason', 'scheduled_for', 'started_at')) as RunTimes[];
          const going = rows.some((r) => r.status === 'queued' || r.status === 'running');
          return rows.length === 5 && !going ? rows : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, message: '5 final runs' },
      );
      assert.deepEqual(
        runs.map((r) => r.status),
        ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded'],
        runs.map((r) => `${r.status}: ${r.reason ?? ''}`).join('\n'),
      );
      // Claimed at the occurrence instead of ahead of it, each still starts on its second.
      for (const r of runs)
        assert.ok(
          r.started_at!.getTime() - r.scheduled_for.getTime() < 1000,
          `started ${r.started_at!.getTime() - r.scheduled_for.getTime()} ms after its occurrence`,
        );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);
