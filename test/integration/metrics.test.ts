import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EXCHANGE, RESULTS_ROUTING_KEY } from '../../src/core/topology';
import { startCommand } from '../helpers/processes';
import { insertJobs } from '../helpers/injector';
import { insertJob, insertRun, runRow } from '../helpers/results';
import { useServices, waitFor } from '../helpers/services';
import { freePort, parseMetrics, sampleValue, scrape, type MetricFamily } from '../helpers/metrics';

/**
 * The four daemons, started as real commands with /metrics on, run a few
 * jobs; every /metrics parses with a Prometheus text-format parser and its
 * counters move as the runs happen.
 */

const services = useServices();

const WANTED: Record<string, Array<[string, MetricFamily['type']]>> = {
  injector: [
    ['cronq_injector_claimed_jobs_total', 'COUNTER'],
    ['cronq_injector_published_total', 'COUNTER'],
    ['cronq_injector_unroutable_total', 'COUNTER'],
    ['cronq_injector_publish_lag_seconds', 'HISTOGRAM'],
    ['process_cpu_seconds_total', 'COUNTER'],
  ],
  runner: [
    ['cronq_runner_running_jobs', 'GAUGE'],
    ['cronq_runner_started_total', 'COUNTER'],
    ['cronq_runner_results_total', 'COUNTER'],
    ['cronq_runner_spawn_delay_seconds', 'HISTOGRAM'],
    ['cronq_runner_results_buffered', 'GAUGE'],
    ['process_resident_memory_bytes', 'GAUGE'],
  ],
  results: [
    ['cronq_results_stored_total', 'COUNTER'],
    ['cronq_results_batch_seconds', 'HISTOGRAM'],
    ['cronq_results_dead_lettered_total', 'COUNTER'],
    ['cronq_results_runs_lost_total', 'COUNTER'],
    ['nodejs_eventloop_lag_seconds', 'GAUGE'],
  ],
  web: [
    ['cronq_jobs', 'GAUGE'],
    ['cronq_runs_oldest_queued_age_seconds', 'GAUGE'],
    ['cronq_jobs_late', 'GAUGE'],
    ['cronq_jobs_overdue', 'GAUGE'],
    ['cronq_web_database_up', 'GAUGE'],
    ['process_cpu_seconds_total', 'COUNTER'],
  ],
};

function assertFamilies(which: string, families: Map<string, MetricFamily>): void {
  for (const [name, type] of WANTED[which]!) {
    const f = families.get(name);
    assert.ok(f, `${which}: ${name} is exposed`);
    assert.equal(f.type, type, `${which}: ${name} is a ${type}`);
    assert.ok(f.help.length > 10, `${which}: ${name} has help text`);
  }
  for (const f of families.values())
    if (f.name.startsWith('cronq_') && f.type === 'COUNTER')
      assert.match(f.name, /_total$/, `${which}: counter ${f.name} ends in _total`);
}

describe('/metrics of every daemon', () => {
  const urls: Record<string, string> = {};
  let logDir: string;

  before(async () => {
    logDir = mkdtempSync(path.join(tmpdir(), 'cronq-metrics-'));
    const { db, vhost } = services;
    const common = { DATABASE_URL: db.url, RABBITMQ_URL: vhost.url };
    const [pi, pr, ps, pw] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const injector = services.track(
      startCommand('cronq-injector', {
        env: { ...common, CRONQ_METRICS_PORT: String(pi) },
      }),
    );
    const runner = services.track(
      startCommand('cronq-runner', {
        env: {
          RABBITMQ_URL: vhost.url,
          LOG_PATH: logDir,
          CRONQ_CONCURRENCY: '4',
        },
        args: ['--metrics-port', String(pr)],
      }),
    );
    const results = services.track(
      startCommand('cronq-results', { env: { ...common, CRONQ_METRICS_PORT: String(ps) } }),
    );
    const web = services.track(startCommand('cronq-web', { env: { ...common, PORT: String(pw) } }));
    await Promise.all([
      injector.waitForLine('serving /metrics', 30_000),
      runner.waitForLine('serving /metrics', 30_000),
      results.waitForLine('serving /metrics', 30_000),
      web.waitForLine('listening on', 30_000),
    ]);
    urls.injector = `http://127.0.0.1:${pi}/metrics`;
    urls.runner = `http://127.0.0.1:${pr}/metrics`;
    urls.results = `http://127.0.0.1:${ps}/metrics`;
    urls.web = `http://127.0.0.1:${pw}/metrics`;
    await runner.waitForLine('runner started', 30_000);
    await injector.waitForLine('injector running', 30_000);
  });

  test('each parses as Prometheus text, with the named metrics, help text and types', async () => {
    for (const which of Object.keys(WANTED)) {
      const r = await scrape(urls[which]!);
      assert.equal(r.status, 200, which);
      assert.match(r.contentType ?? '', /^text\/plain; version=0\.0\.4/, which);
      assertFamilies(which, parseMetrics(r.text));
    }
  });

  test('the counters move as runs happen: 3 jobs, 2 succeed, 1 fails', async () => {
    const before = new Map<string, Map<string, MetricFamily>>();
    for (const which of Object.keys(WANTED))
      before.set(which, parseMetrics((await scrape(urls[which]!)).text));
    assert.equal(sampleValue(before.get('runner')!, 'cronq_runner_started_total'), 0);

    await insertJobs(services.db.db, [
      { name: 'ok-1', schedule: null, nextRun: null, runNow: true, command: 'true' },
      { name: 'ok-2', schedule: null, nextRun: null, runNow: true, command: 'echo hi' },
      { name: 'bad', schedule: null, nextRun: null, runNow: true, command: 'exit 3' },
    ]);

    const after = async (which: string) => parseMetrics((await scrape(urls[which]!)).text);
    const inj = await waitFor(
      async () => {
        const m = await after('injector');
        return sampleValue(m, 'cronq_injector_published_total') >= 3 ? m : undefined;
      },
      { timeoutMs: 30_000, message: 'the injector counts 3 publishes' },
    );
    assert.equal(sampleValue(inj, 'cronq_injector_published_total', { republish: 'false' }), 3);
    assert.ok(sampleValue(inj, 'cronq_injector_claimed_jobs_total') >= 3);
    assert.equal(sampleValue(inj, 'cronq_injector_publish_lag_seconds'), 3, '3 lags observed');
    assert.equal(sampleValue(inj, 'cronq_injector_unroutable_total'), 0);

    const run = await waitFor(
      async () => {
        const m = await after('runner');
        return sampleValue(m, 'cronq_runner_results_total') >= 3 ? m : undefined;
      },
      { timeoutMs: 30_000, message: 'the runner counts 3 results' },
    );
    assert.equal(sampleValue(run, 'cronq_runner_started_total'), 3);
    assert.equal(sampleValue(run, 'cronq_runner_results_total', { status: 'succeeded' }), 2);
    assert.equal(sampleValue(run, 'cronq_runner_results_total', { status: 'failed' }), 1);
    assert.equal(sampleValue(run, 'cronq_runner_spawn_delay_seconds'), 3);
    assert.equal(sampleValue(run, 'cronq_runner_running_jobs'), 0);
    assert.equal(sampleValue(run, 'cronq_runner_concurrency'), 4);

    const res = await waitFor(
      async () => {
        const m = await after('results');
        // starting + finished of each run.
        return sampleValue(m, 'cronq_results_stored_total') >= 6 ? m : undefined;
      },
      { timeoutMs: 30_000, message: 'the results consumer counts 6 stored results' },
    );
    assert.equal(sampleValue(res, 'cronq_results_stored_total'), 6);
    const batches = sampleValue(res, 'cronq_results_batches_total');
    assert.ok(batches >= 1);
    assert.equal(sampleValue(res, 'cronq_results_batch_seconds'), batches);
    assert.equal(sampleValue(res, 'cronq_results_dead_lettered_total'), 0);

    // The web reads the database at most every 5 s: wait for the next read.
    const web = await waitFor(
      async () => {
        const m = await after('web');
        return sampleValue(m, 'cronq_jobs', { status: 'failed' }) === 1 ? m : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 500, message: 'the web counts the failed job' },
    );
    assert.equal(sampleValue(web, 'cronq_jobs', { status: 'succeeded' }), 2);
    assert.equal(sampleValue(web, 'cronq_jobs'), 3, 'every job counted once');
    assert.equal(sampleValue(web, 'cronq_web_database_up'), 1);
    assert.equal(sampleValue(web, 'cronq_runs_oldest_queued_age_seconds'), 0);
    assert.equal(sampleValue(web, 'cronq_jobs_late'), 0);
    rmSync(logDir, { recursive: true, force: true });
  });

  test('a poison result moves cronq_results_dead_lettered_total', async () => {
    const ch = await (await services.vhost.connect()).createConfirmChannel();
    ch.publish(EXCHANGE, RESULTS_ROUTING_KEY, Buffer.from('not a result'), { persistent: true });
    await ch.waitForConfirms();
    await waitFor(
      async () =>
        sampleValue(
          parseMetrics((await scrape(urls.results!)).text),
          'cronq_results_dead_lettered_total',
          {
            refused: 'false',
          },
        ) === 1,
      { timeoutMs: 20_000, message: 'the results consumer counts the dead letter' },
    );
  });

  test('a run whose heartbeats stopped moves cronq_results_runs_lost_total', async () => {
    const { db } = services.db;
    const tenMinutesAgo = new Date(Date.now() - 600_000);
    const runId = await insertRun(db, await insertJob(db, 'silent'), { status: 'running' });
    await db('runs')
      .where({ run_id: runId })
      .update({ started_at: tenMinutesAgo, heartbeat_at: tenMinutesAgo });
    await waitFor(async () => (await runRow(db, runId))?.status === 'lost', {
      timeoutMs: 30_000,
      message: 'the sweep marks the run lost',
    });
    // Counted once the sweep's transaction has returned, a moment after the row reads lost.
    await waitFor(
      async () =>
        sampleValue(
          parseMetrics((await scrape(urls.results!)).text),
          'cronq_results_runs_lost_total',
        ) === 1,
      { message: 'the results consumer counts the lost run' },
    );
  });
});
