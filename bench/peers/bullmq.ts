/**
 * BullMQ (Redis) in the comparison.
 *
 * - steady: one job scheduler per job, `queue.upsertJobScheduler(id,
 *   {every: 1000, startDate})` — BullMQ's native repeat mechanism (v5.16+),
 *   all starting at the same second as CronQ's `R/<start>/PT1S` jobs.
 * - burst: `queue.addBulk` of 1,000 delayed jobs (`delay` = due - now),
 *   added 1.5 s before the due instant: BullMQ's documented way to run a job
 *   at a given time.
 * - two worker processes, `concurrency: 16` each; defaults otherwise
 *   (completed jobs kept, so completion is what BullMQ stores).
 */
import path from 'node:path';
import { Queue } from 'bullmq';
import { WorkerPool } from '../lib/workers';
import { analyseSteady, type SteadyFigures } from '../lib/occurrences';
import { benchName, REDIS_URL } from '../lib/services';
import { pollUntil, sleep, type BenchSystem, type BurstFigures } from '../e2e/system';

const CONCURRENCY = 16;

export class BullmqSystem implements BenchSystem {
  readonly name = 'bullmq';
  private readonly queueName = benchName('bench');
  private readonly prefix = benchName('cronqbench');
  private queue?: Queue;
  private workers?: WorkerPool;

  settings(): Record<string, string | number | boolean> {
    return {
      version: require('bullmq/package.json').version as string,
      workers: 2,
      concurrency: CONCURRENCY,
      steady: 'upsertJobScheduler(id, {every: 1000, startDate})',
      burst: 'addBulk with delay = due - now',
      removeOnComplete: false,
    };
  }

  async setup(): Promise<void> {
    const url = new URL(REDIS_URL);
    this.queue = new Queue(this.queueName, {
      connection: {
        host: url.hostname,
        port: Number(url.port || 6379),
        maxRetriesPerRequest: null,
      },
      prefix: this.prefix,
    });
    await this.queue.waitUntilReady();
    this.workers = new WorkerPool(path.join(__dirname, 'bullmq-worker.ts'), {
      BENCH_REDIS_URL: REDIS_URL,
      BENCH_QUEUE: this.queueName,
      BENCH_PREFIX: this.prefix,
      BENCH_CONCURRENCY: String(CONCURRENCY),
    });
    await this.workers.start();
  }

  private async completed(): Promise<number> {
    const counts = await this.queue!.getJobCounts('completed', 'failed');
    return (counts.completed ?? 0) + (counts.failed ?? 0);
  }

  pids(): Record<string, number[]> {
    return { workers: this.workers?.pids() ?? [] };
  }

  async burst(jobs: number, onDue?: () => void): Promise<BurstFigures> {
    const before = await this.completed();
    const due = Date.now() + 1500;
    const now = Date.now();
    await this.queue!.addBulk(
      Array.from({ length: jobs }, (_, i) => ({
        name: 'burst',
        data: { job: `burst-${i}`, due },
        opts: { delay: due - now },
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
    const start = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    const ids = Array.from({ length: jobs }, (_, i) => `steady-${start}-${i}`);
    for (const id of ids) {
      await this.queue!.upsertJobScheduler(
        id,
        { every: 1000, startDate: new Date(start) },
        { name: 'steady', data: { job: id } },
      );
    }
    const end = start + seconds * 1000;
    await sleep(end - Date.now());
    for (const id of ids) await this.queue!.removeJobScheduler(id);
    await this.workers!.drain();
    const records = this.workers!.takeRecords();
    return analyseSteady(records, { from: start + 2000, to: end, periodMs: 1000, jobs: ids });
  }

  async teardown(): Promise<void> {
    await this.workers?.stop().catch(() => undefined);
    if (this.queue) {
      await this.queue.obliterate({ force: true }).catch(() => undefined);
      await this.queue.close().catch(() => undefined);
    }
  }
}
