/**
 * Retries end to end, with the real daemons from dist/: cronq-injector
 * claims the job and publishes its runs (the retry runs too, once their
 * not_before has come), cronq-runner runs the command, cronq-results
 * records each result and writes the retry with the failed one. The job's
 * command fails twice, then succeeds (a counter file), and its policy is
 * retries { max: 3, delay: PT1S, backoff: 2 }. Then the same with the
 * results consumer SIGKILLed after the first failure and the injector
 * SIGKILLed between attempts: still three attempts, none doubled.
 *
 * Needs the injector's publishing of due retry runs (docs/policies.md);
 * without it no retry ever runs and both tests fail at the second attempt.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Knex } from '../../src/core/db';
import { connectWithJobQueue, insertJobs, startInjector } from '../helpers/injector';
import { startCommand, type Proc } from '../helpers/processes';
import { ResultPublisher } from '../helpers/results';
import { useServices, waitFor } from '../helpers/services';

const svc = useServices();
const POLICY = { retries: { max: 3, delay: 'PT1S', backoff: 2 } };

interface Attempt {
  run_id: string;
  attempt: number;
  first_run_id: string | null;
  triggered_by: string;
  status: string;
  started_at: Date | null;
  finished_at: Date | null;
  not_before: Date | null;
}

async function attemptsOf(db: Knex, jobId: number): Promise<Attempt[]> {
  return (await db('runs')
    .where({ job_id: jobId })
    .orderBy('attempt')
    .select(
      'run_id',
      'attempt',
      'first_run_id',
      'triggered_by',
      'status',
      'started_at',
      'finished_at',
      'not_before',
    )) as Attempt[];
}

function startResults(): Proc {
  return svc.track(
    startCommand('cronq-results', {
      env: { DATABASE_URL: svc.db.url, RABBITMQ_URL: svc.vhost.url },
    }),
  );
}

/** A job that fails until it has run three times; runs once now (run_now). */
async function flakyJob(name: string, dir: string): Promise<number> {
  const counter = path.join(dir, `${name}.count`);
  const command = `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; test $n -ge 3`;
  const [jobId] = await insertJobs(svc.db.db, [
    { name, schedule: null, nextRun: null, runNow: true, command },
  ]);
  await svc.db
    .db('jobs')
    .where({ id: jobId })
    .update({ policies: JSON.stringify(POLICY) });
  return jobId!;
}

/** Exactly three attempts of one chain: 1 and 2 failed, 3 succeeded, linked to the first. */
function assertChain(runs: Attempt[], counterFile: string): void {
  assert.deepEqual(
    runs.map((r) => [r.attempt, r.status, r.triggered_by]),
    [
      [1, 'failed', 'manual'],
      [2, 'failed', 'retry'],
      [3, 'succeeded', 'retry'],
    ],
  );
  const first = runs[0]!.run_id;
  assert.equal(runs[0]!.first_run_id, null);
  assert.equal(runs[1]!.first_run_id, first);
  assert.equal(runs[2]!.first_run_id, first);
  assert.equal(readFileSync(counterFile, 'utf8').trim(), '3', 'the command ran three times');
}

describe('retries with the real daemons', () => {
  test(
    'fails twice, then succeeds: three attempts, each after its delay',
    { timeout: 90_000 },
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'cronq-retries-'));
      try {
        const conn = await connectWithJobQueue(svc.vhost);
        startResults();
        await (await ResultPublisher.open(await svc.vhost.connect())).waitForConsumers(1, 40_000);
        svc.track(
          startCommand('cronq-runner', { env: { RABBITMQ_URL: svc.vhost.url, LOG_PATH: dir } }),
        );
        svc.track(await startInjector(svc.db, svc.vhost));
        const jobId = await flakyJob('flaky', dir);

        const runs = await waitFor(
          async () => {
            const r = await attemptsOf(svc.db.db, jobId);
            return r.some((a) => a.status === 'succeeded') ? r : undefined;
          },
          { timeoutMs: 45_000, intervalMs: 100, message: 'the third attempt succeeded' },
        );
        // Nothing more comes: a success ends the chain.
        await new Promise((r) => setTimeout(r, 3000));
        const settled = await attemptsOf(svc.db.db, jobId);
        assertChain(settled, path.join(dir, 'flaky.count'));
        assert.equal(settled.length, runs.length);

        // Retry n waits delay × backoff^(n-1) less up to 20 %: 0.8-1 s, then 1.6-2 s.
        // The gap from an attempt's end to the next one's start is at least
        // that (not_before counts from the COMMIT of the failure, after its
        // end), and at most that plus slack for the result's batch (50 ms),
        // the injector noticing the due retry (its probe), the publish and the
        // runner's start: 2.5 s of slack is far more than they take even on a
        // loaded machine.
        const SLACK_MS = 2500;
        for (const [n, ceiling] of [
          [1, 1000],
          [2, 2000],
        ] as const) {
          const prev = settled[n - 1]!;
          const next = settled[n]!;
          const gap = next.started_at!.getTime() - prev.finished_at!.getTime();
          assert.ok(gap >= 0.8 * ceiling - 50, `retry ${n} started ${gap} ms after the failure`);
          assert.ok(gap <= ceiling + SLACK_MS, `retry ${n} started ${gap} ms after the failure`);
          const wait = next.not_before!.getTime() - prev.finished_at!.getTime();
          assert.ok(
            wait >= 0.8 * ceiling - 50 && wait <= ceiling + 1000,
            `not_before ${wait} ms on`,
          );
        }
        await conn.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test(
    'results consumer and injector SIGKILLed between attempts: still exactly three attempts',
    { timeout: 120_000 },
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'cronq-retries-kill-'));
      try {
        const conn = await connectWithJobQueue(svc.vhost);
        const pub = await ResultPublisher.open(await svc.vhost.connect());
        let results = startResults();
        await pub.waitForConsumers(1, 40_000);
        svc.track(
          startCommand('cronq-runner', { env: { RABBITMQ_URL: svc.vhost.url, LOG_PATH: dir } }),
        );
        let injector = svc.track(await startInjector(svc.db, svc.vhost));
        const jobId = await flakyJob('killed', dir);

        // The first failure recorded: the consumer dies at once, maybe before its ack.
        await waitFor(
          async () => (await attemptsOf(svc.db.db, jobId)).some((a) => a.status === 'failed'),
          { timeoutMs: 30_000, intervalMs: 20, message: 'the first failure recorded' },
        );
        results.kill('SIGKILL');
        await results.exited;
        results = startResults();
        await pub.waitForConsumers(1, 40_000);

        // A retry waiting in the ledger: the injector dies before publishing it.
        await waitFor(
          async () =>
            (await attemptsOf(svc.db.db, jobId)).some(
              (a) => a.status === 'queued' && a.attempt >= 2,
            ),
          { timeoutMs: 30_000, intervalMs: 20, message: 'a retry queued' },
        );
        injector.kill('SIGKILL');
        await injector.exited;
        await new Promise((r) => setTimeout(r, 1500));
        injector = svc.track(await startInjector(svc.db, svc.vhost));

        await waitFor(
          async () => (await attemptsOf(svc.db.db, jobId)).some((a) => a.status === 'succeeded'),
          { timeoutMs: 60_000, intervalMs: 100, message: 'the third attempt succeeded' },
        );
        await new Promise((r) => setTimeout(r, 3000));
        assertChain(await attemptsOf(svc.db.db, jobId), path.join(dir, 'killed.count'));
        await conn.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
