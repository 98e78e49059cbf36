/**
 * CronQ itself, as an operator runs it: the real bin/cronq-injector, two
 * bin/cronq-runner (CRONQ_CONCURRENCY=16) and bin/cronq-results, against its
 * own database and vhost. Jobs are rows in `jobs`, inserted with SQL as the
 * web API would leave them. Everything measured comes from the `runs` table:
 * `scheduled_for` (the occurrence), `started_at` (the runner's start, just
 * before the spawn), `finished_at`, `status`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import amqp from 'amqplib';
import { startCommand, type Proc } from '../../test/helpers/processes';
import { freePort } from '../../test/helpers/metrics';
import { createDb, migrate } from '../../src/core/db';
import { parseDatabaseUrl } from '../../src/core/config';
import { analyseSteady, type ExecutionRecord, type SteadyFigures } from '../lib/occurrences';
import {
  benchName,
  createMysqlDatabase,
  createVhost,
  deleteVhost,
  dropMysqlDatabase,
  MYSQL,
} from '../lib/services';
import { pollUntil, sleep, type BenchSystem, type BurstFigures } from './system';

const CONCURRENCY = 16;
/**
 * CRONQ_INJECTOR_BATCH_SIZE is left at its default (500) unless
 * BENCH_CRONQ_BATCH_SIZE is set: 1,000 (the whole burst in one claim) was
 * tried and was not faster, because the first messages then leave only
 * after all 1,000 are claimed and encoded.
 */
const BATCH_SIZE = process.env.BENCH_CRONQ_BATCH_SIZE;
/** Passed as CRONQ_INJECTOR_LEAD_MS when set (0 = claim only once due); unset = the default. */
const LEAD_MS = process.env.BENCH_CRONQ_LEAD_MS;
/**
 * BENCH_CRONQ_METRICS=1: every daemon serves /metrics (CRONQ_METRICS_PORT)
 * and each is scraped every SCRAPE_MS, as Prometheus would (more often than
 * its usual 15 s, so the cost shows).
 */
const METRICS = process.env.BENCH_CRONQ_METRICS === '1';
const SCRAPE_MS = 5_000;
const FINAL = "('succeeded', 'failed', 'timed_out', 'lost')";

/** MariaDB DATETIME(3) text for a UTC instant. */
function sqlTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * The policies the `cronq_policies` system sets on every job: no overlap
 * (each claim checks the job's active run under its row lock) and retries
 * (each final result is checked against them), so the burst measures what
 * the policy checks cost. `true` never fails, so no retry is ever made.
 */
export const BENCH_POLICIES = JSON.stringify({
  overlap: 'forbid',
  retries: { max: 2, delay: 'PT30S' },
});

/** A variant of the jobs (bench/notify.ts): another command, and categories.notify on every category. */
export interface CronqVariant {
  name: string;
  command: string;
  /** categories.notify JSON text (docs/notifications.md), or null. */
  notify: string | null;
}

export class CronqSystem implements BenchSystem {
  /** `cronq`, or `cronq_policies` when every job has BENCH_POLICIES. */
  readonly name: string;

  constructor(
    private readonly policies: string | null = null,
    private readonly variant: CronqVariant | null = null,
  ) {
    this.name = variant?.name ?? (policies === null ? 'cronq' : 'cronq_policies');
  }

  private readonly dbName = benchName('cronq_bench');
  private readonly vhost = benchName('cronq_bench');
  private readonly logDir = mkdtempSync(path.join(os.tmpdir(), 'cronq-bench-'));
  private pool?: mysql.Pool;
  private procs: Proc[] = [];
  private roles: Array<{ role: 'injector' | 'runners' | 'results'; proc: Proc }> = [];
  private seq = 0;
  private scraper: NodeJS.Timeout | undefined;

  settings(): Record<string, string | number | boolean> {
    return {
      injectors: 1,
      runners: 2,
      CRONQ_CONCURRENCY: CONCURRENCY,
      CRONQ_INJECTOR_BATCH_SIZE: BATCH_SIZE ?? '500 (default)',
      CRONQ_INJECTOR_LEAD_MS: LEAD_MS || '500 (default)',
      resultsConsumers: 1,
      command: this.variant
        ? `'${this.variant.command}'`
        : "'true' (run by the runner as /bin/sh -c true)",
      policies: this.policies ?? 'none',
      notify: this.variant?.notify ? 'every category' : 'none',
      metrics: METRICS ? `on, each daemon scraped every ${SCRAPE_MS / 1000} s` : 'off',
    };
  }

  async setup(): Promise<void> {
    const dbUrl = await createMysqlDatabase(this.dbName);
    const amqpUrl = await createVhost(this.vhost);
    const knex = createDb(parseDatabaseUrl(dbUrl), { poolMax: 2 });
    try {
      await migrate(knex);
    } finally {
      await knex.destroy();
    }
    this.pool = mysql.createPool({
      ...MYSQL,
      database: this.dbName,
      connectionLimit: 3,
      timezone: 'Z',
    });
    const env = {
      DATABASE_URL: dbUrl,
      RABBITMQ_URL: amqpUrl,
      CRONQ_CONCURRENCY: String(CONCURRENCY),
      ...(BATCH_SIZE ? { CRONQ_INJECTOR_BATCH_SIZE: BATCH_SIZE } : {}),
      ...(LEAD_MS !== undefined && LEAD_MS !== '' ? { CRONQ_INJECTOR_LEAD_MS: LEAD_MS } : {}),
      LOG_PATH: this.logDir,
      CRONQ_LOG_LEVEL: 'warn',
    };
    const metricsUrls: string[] = [];
    const start = async (role: 'injector' | 'runners' | 'results', command: string) => {
      const port = METRICS ? await freePort() : undefined;
      if (port !== undefined) metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
      const proc = startCommand(command, {
        env: port === undefined ? env : { ...env, CRONQ_METRICS_PORT: String(port) },
      });
      this.procs.push(proc);
      this.roles.push({ role, proc });
    };
    await start('results', 'cronq-results');
    await start('runners', 'cronq-runner');
    await start('runners', 'cronq-runner');
    await this.waitForConsumers(amqpUrl);
    await start('injector', 'cronq-injector');
    if (METRICS)
      this.scraper = setInterval(() => {
        for (const url of metricsUrls)
          void fetch(url, { signal: AbortSignal.timeout(SCRAPE_MS) })
            .then((r) => r.text())
            .catch(() => undefined);
      }, SCRAPE_MS);
    // One run end to end proves every process is up before anything is timed.
    const { category } = await this.defineJobs(
      'warmup',
      1,
      `R/${new Date(Date.now()).toISOString()}/P1D`,
      Date.now(),
    );
    const done = await pollUntil(
      () => this.finalCount(`job_id IN (SELECT id FROM jobs WHERE category_id = ${category})`),
      1,
      Date.now() + 60_000,
      100,
    );
    if (!Number.isFinite(done.at))
      throw new Error(`CronQ warm-up run did not finish within 60 s:\n${this.output()}`);
  }

  private output(): string {
    return this.procs.map((p) => p.output().split('\n').slice(-15).join('\n')).join('\n---\n');
  }

  private async waitForConsumers(url: string): Promise<void> {
    const conn = await amqp.connect(url);
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        try {
          const jobs = await ch.checkQueue('cronq_jobs');
          const results = await ch.checkQueue('cronq_results');
          await ch.close();
          if (jobs.consumerCount >= 2 && results.consumerCount >= 1) return;
        } catch {
          // not declared yet
        }
        if (Date.now() > deadline)
          throw new Error(
            `CronQ runners/results did not start consuming within 60 s:\n${this.output()}`,
          );
        await sleep(200);
      }
    } finally {
      await conn.close().catch(() => undefined);
    }
  }

  private async finalCount(where: string): Promise<number> {
    const [rows] = (await this.pool!.query(
      `SELECT COUNT(*) AS n FROM runs WHERE ${where} AND status IN ${FINAL}`,
    )) as unknown as [[{ n: number }]];
    return Number(rows[0].n);
  }

  /** A category of `count` jobs, all with the same schedule and first occurrence. */
  private async defineJobs(
    label: string,
    count: number,
    schedule: string,
    firstMs: number,
  ): Promise<{ category: number; ids: number[] }> {
    const name = `${label}-${++this.seq}-${Date.now()}`;
    const [res] = (await this.pool!.query('INSERT INTO categories (name, notify) VALUES (?, ?)', [
      name,
      this.variant?.notify ?? null,
    ])) as unknown as [{ insertId: number }];
    const category = res.insertId;
    const rows = Array.from({ length: count }, (_, i) => [
      `${label}-${i}`,
      schedule,
      sqlTime(firstMs),
      this.variant?.command ?? 'true',
      'default',
      category,
      this.policies,
    ]);
    for (let i = 0; i < rows.length; i += 1000) {
      await this.pool!.query(
        'INSERT INTO jobs (name, schedule, next_run, command, routing_key, category_id, policies) VALUES ?',
        [rows.slice(i, i + 1000)],
      );
    }
    const [ids] = (await this.pool!.query('SELECT id FROM jobs WHERE category_id = ? ORDER BY id', [
      category,
    ])) as unknown as [Array<{ id: number }>];
    return { category, ids: ids.map((r) => r.id) };
  }

  pids(): Record<string, number[]> {
    const byRole: Record<string, number[]> = { injector: [], runners: [], results: [] };
    for (const { role, proc } of this.roles) if (proc.child.pid) byRole[role]!.push(proc.child.pid);
    return byRole;
  }

  async burst(jobs: number, onDue?: () => void): Promise<BurstFigures> {
    const due = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    // One occurrence a day from the due instant: exactly one run in the test.
    const { category } = await this.defineJobs(
      'burst',
      jobs,
      `R/${new Date(due).toISOString()}/P1D`,
      due,
    );
    // The poll counts final runs through the (status, finished_at) index,
    // less those already final (the warm-up): as cheap for MariaDB as the
    // ceiling's COUNT(*) of its results table. The poll used to join through
    // the category's jobs (~5 ms of MariaDB each, 20 a second), and that CPU
    // was taken from CronQ on two cores and counted as its MariaDB's share.
    const before = await this.finalCount('TRUE');
    await sleep(due - Date.now());
    onDue?.();
    const where = `job_id IN (SELECT id FROM jobs WHERE category_id = ${category})`;
    const done = await pollUntil(
      async () => (await this.finalCount('TRUE')) - before,
      jobs,
      due + 120_000,
    );
    await this.pool!.query(
      'UPDATE jobs SET ended_at = UTC_TIMESTAMP(3), next_run = NULL WHERE category_id = ?',
      [category],
    );
    const completionMs = done.at - due;
    // The count by category, once: every one of the 1,000 is this burst's.
    const stored = await this.finalCount(where);
    const [[st]] = (await this.pool!.query(
      `SELECT MIN(queued_at) AS first_claimed, MAX(queued_at) AS last_claimed, MAX(published_at) AS last_published,
              MIN(started_at) AS first_started, MAX(started_at) AS last_started, MAX(finished_at) AS last_finished
         FROM runs WHERE ${where}`,
    )) as unknown as [[Record<string, Date | null>]];
    const stages: Record<string, number> = {};
    for (const [k, v] of Object.entries(st)) if (v) stages[k] = v.getTime() - due;
    stages.last_stored = completionMs;
    return {
      jobs,
      completionMs,
      runsPerSecond: (jobs / completionMs) * 1000,
      stored,
      stages,
    };
  }

  async steady(jobs: number, seconds: number): Promise<SteadyFigures> {
    const start = Math.ceil(Date.now() / 1000) * 1000 + 3000;
    const { category, ids } = await this.defineJobs(
      'steady',
      jobs,
      `R/${new Date(start).toISOString()}/PT1S`,
      start,
    );
    const end = start + seconds * 1000;
    await sleep(end - Date.now());
    await this.pool!.query(
      'UPDATE jobs SET ended_at = UTC_TIMESTAMP(3), next_run = NULL WHERE category_id = ?',
      [category],
    );
    // Drain: wait until no run of these jobs is still queued or running (at
    // most 60 s), so a late run counts in the lag instead of as missed.
    await sleep(1000);
    await pollUntil(
      async () => {
        const [rows] = (await this.pool!.query(
          "SELECT COUNT(*) AS n FROM runs WHERE job_id IN (SELECT id FROM jobs WHERE category_id = ?) AND status IN ('queued', 'running')",
          [category],
        )) as unknown as [[{ n: number }]];
        return Number(rows[0].n) === 0 ? 1 : 0;
      },
      1,
      Date.now() + 60_000,
      200,
    );
    const [rows] = (await this.pool!.query(
      `SELECT job_id, scheduled_for, started_at, finished_at FROM runs
        WHERE job_id IN (SELECT id FROM jobs WHERE category_id = ?) AND started_at IS NOT NULL`,
      [category],
    )) as unknown as [
      Array<{ job_id: number; scheduled_for: Date; started_at: Date; finished_at: Date | null }>,
    ];
    const records: ExecutionRecord[] = rows.map((r) => ({
      job: String(r.job_id),
      scheduledFor: r.scheduled_for.getTime(),
      startedAt: r.started_at.getTime(),
      finishedAt: r.finished_at ? r.finished_at.getTime() : NaN,
    }));
    return analyseSteady(records, {
      from: start + 2000,
      to: end,
      periodMs: 1000,
      jobs: ids.map(String),
    });
  }

  async teardown(): Promise<void> {
    clearInterval(this.scraper);
    await Promise.all(this.procs.map((p) => p.stop(10_000).catch(() => undefined)));
    await this.pool?.end().catch(() => undefined);
    await deleteVhost(this.vhost);
    await dropMysqlDatabase(this.dbName).catch(() => undefined);
    rmSync(this.logDir, { recursive: true, force: true });
  }
}
