/**
 * pg-boss (PostgreSQL) in the comparison.
 *
 * pg-boss cannot run a job every second natively: `schedule()` takes a cron
 * expression of minute granularity and its timekeeper debounces each
 * schedule to once per 60 s (timgit/pg-boss#427). The closest honest
 * equivalent used here: a scheduler loop in the driver that, 2 s before each
 * second, inserts that second's 200 occurrences in one `boss.insert()` with
 * `startAfter` = the occurrence time, so pg-boss's own deferred-job
 * mechanism decides when they become available. Labelled "pg-boss
 * (startAfter loop)" in the report.
 *
 * burst: one `boss.insert()` of 1,000 jobs with `startAfter` = the due
 * instant, 1.5 s ahead. Workers: see pgboss-worker.ts.
 */
import path from 'node:path';
import PgBoss from 'pg-boss';
import { WorkerPool } from '../lib/workers';
import { analyseSteady, type SteadyFigures } from '../lib/occurrences';
import { benchName, createPgDatabase, dropPgDatabase } from '../lib/services';
import { pollUntil, sleep, type BenchSystem, type BurstFigures } from '../e2e/system';

const CONCURRENCY = 16;
const QUEUE = 'bench';

export class PgBossSystem implements BenchSystem {
  readonly name = 'pgboss';
  private readonly dbName = benchName('cronq_bench_pgboss');
  private boss?: PgBoss;
  private workers?: WorkerPool;

  settings(): Record<string, string | number | boolean> {
    return {
      version: require('pg-boss/package.json').version as string,
      workers: 2,
      workCallsPerWorker: CONCURRENCY,
      batchSize: 1,
      pollingIntervalSeconds: 0.5,
      notifyWorkerWhileBusy: process.env.BENCH_PGBOSS_NOTIFY !== '0',
      steady:
        "no native sub-minute schedule: driver loop inserts each second's jobs 2 s ahead with startAfter",
      burst: 'insert() of 1,000 jobs with startAfter = due instant',
    };
  }

  async setup(): Promise<void> {
    const url = await createPgDatabase(this.dbName);
    this.boss = new PgBoss({ connectionString: url, supervise: false, schedule: false, max: 5 });
    this.boss.on('error', () => undefined);
    await this.boss.start();
    await this.boss.createQueue(QUEUE);
    this.workers = new WorkerPool(path.join(__dirname, 'pgboss-worker.ts'), {
      BENCH_PG_URL: url,
      BENCH_QUEUE: QUEUE,
      BENCH_CONCURRENCY: String(CONCURRENCY),
    });
    await this.workers.start();
  }

  private async completed(): Promise<number> {
    const r = await this.boss!.getDb().executeSql(
      "SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state IN ('completed', 'failed')",
      [QUEUE],
    );
    return Number((r.rows[0] as { n: number }).n);
  }

  pids(): Record<string, number[]> {
    return { workers: this.workers?.pids() ?? [] };
  }

  async burst(jobs: number, onDue?: () => void): Promise<BurstFigures> {
    const before = await this.completed();
    const due = Date.now() + 1500;
    const startAfter = new Date(due).toISOString();
    await this.boss!.insert(
      Array.from({ length: jobs }, (_, i) => ({
        name: QUEUE,
        data: { job: `burst-${i}`, due },
        startAfter,
      })),
    );
    await sleep(due - Date.now());
    onDue?.();
    const done = await pollUntil(() => this.completed(), before + jobs, due + 120_000);
    await this.workers!.flush();
    this.workers!.takeRecords();
    const completionMs = done.at - due;
    return {
      jobs,
      completionMs,
      runsPerSecond: (jobs / completionMs) * 1000,
      stored: done.last - before,
    };
  }

  async steady(jobs: number, seconds: number): Promise<SteadyFigures> {
    this.workers!.takeRecords();
    const start = Math.ceil(Date.now() / 1000) * 1000 + 3000;
    const ids = Array.from({ length: jobs }, (_, i) => `steady-${start}-${i}`);
    const end = start + seconds * 1000;
    for (let t = start; t < end; t += 1000) {
      await sleep(t - 2000 - Date.now());
      const startAfter = new Date(t).toISOString();
      await this.boss!.insert(
        ids.map((id) => ({ name: QUEUE, data: { job: id, due: t }, startAfter })),
      );
    }
    await sleep(end - Date.now());
    await this.workers!.drain();
    const records = this.workers!.takeRecords();
    return analyseSteady(records, { from: start + 2000, to: end, periodMs: 1000, jobs: ids });
  }

  async teardown(): Promise<void> {
    await this.workers?.stop().catch(() => undefined);
    await this.boss?.stop({ graceful: false, wait: true }).catch(() => undefined);
    await dropPgDatabase(this.dbName);
  }
}
