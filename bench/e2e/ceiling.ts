/**
 * The ceiling: the same libraries CronQ uses with none of its logic.
 * publish with confirms -> 2 workers (prefetch 16) consume, spawn `true`,
 * publish the result with a confirm -> one consumer batches results into a
 * multi-row INSERT (up to 500 rows or 20 ms, acked after the commit). The
 * burst is published at the due instant, so publishing is inside the time.
 */
import path from 'node:path';
import amqp, {
  type ChannelModel,
  type ConfirmChannel,
  type Channel,
  type ConsumeMessage,
} from 'amqplib';
import mysql from 'mysql2/promise';
import { WorkerPool } from '../lib/workers';
import {
  benchName,
  createMysqlDatabase,
  createVhost,
  deleteVhost,
  dropMysqlDatabase,
  MYSQL,
} from '../lib/services';
import { pollUntil, sleep, type BenchSystem, type BurstFigures } from './system';
import type { SteadyFigures } from '../lib/occurrences';

const CONCURRENCY = 16;
const BATCH_MAX = 500;
const BATCH_MS = 20;

export class BarePipeline implements BenchSystem {
  readonly name = 'ceiling';
  private readonly dbName = benchName('cronq_bench_ceiling');
  private readonly vhost = benchName('cronq_bench_ceiling');
  private conn?: ChannelModel;
  private pub?: ConfirmChannel;
  private sub?: Channel;
  private pool?: mysql.Pool;
  private workers?: WorkerPool;
  private pending: ConsumeMessage[] = [];
  private timer?: NodeJS.Timeout;
  /** Flushes run one after another so `ack(last, allUpTo)` never covers a batch still being inserted. */
  private flushing: Promise<void> = Promise.resolve();
  private runSeq = 0;

  settings(): Record<string, string | number | boolean> {
    return {
      workers: 2,
      prefetch: CONCURRENCY,
      insertBatchMax: BATCH_MAX,
      insertBatchMs: BATCH_MS,
      publisherConfirms: true,
      persistent: true,
    };
  }

  async setup(): Promise<void> {
    await createMysqlDatabase(this.dbName);
    const url = await createVhost(this.vhost);
    this.pool = mysql.createPool({ ...MYSQL, database: this.dbName, connectionLimit: 4 });
    await this.pool.query(
      'CREATE TABLE results (run_id CHAR(32) PRIMARY KEY, job_id INT NOT NULL, return_code INT, finished_at DATETIME(3), output TEXT, stored_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))',
    );
    this.conn = await amqp.connect(url);
    // A broker restart must fail this measurement, not crash the whole run.
    this.conn.on('error', () => undefined);
    this.pub = await this.conn.createConfirmChannel();
    await this.pub.assertQueue('bench_jobs', { durable: true });
    await this.pub.assertQueue('bench_results', { durable: true });
    this.sub = await this.conn.createChannel();
    await this.sub.prefetch(BATCH_MAX * 2);
    await this.sub.consume('bench_results', (m) => m && this.onResult(m));
    this.workers = new WorkerPool(path.join(__dirname, 'ceiling-worker.ts'), {
      BENCH_AMQP_URL: url,
      BENCH_CONCURRENCY: String(CONCURRENCY),
    });
    await this.workers.start();
  }

  private onResult(m: ConsumeMessage): void {
    this.pending.push(m);
    if (this.pending.length >= BATCH_MAX) this.scheduleFlush();
    else if (!this.timer) this.timer = setTimeout(() => this.scheduleFlush(), BATCH_MS);
  }

  private scheduleFlush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    this.flushing = this.flushing
      .then(() => this.flush(batch))
      .catch((err: unknown) => {
        process.stderr.write(`ceiling insert failed: ${String(err)}\n`);
      });
  }

  private async flush(batch: ConsumeMessage[]): Promise<void> {
    const rows = batch.map((m) => {
      const r = JSON.parse(m.content.toString()) as {
        run_id: string;
        job_id: number;
        return_code: number;
        finished_at: number;
        output?: string;
      };
      return [r.run_id, r.job_id, r.return_code, new Date(r.finished_at), r.output ?? null];
    });
    await this.pool!.query(
      'INSERT IGNORE INTO results (run_id, job_id, return_code, finished_at, output) VALUES ?',
      [rows],
    );
    this.sub!.ack(batch[batch.length - 1]!, true);
  }

  pids(): Record<string, number[]> {
    // The driver (this process) publishes and stores the results here, so its CPU is the pipeline's.
    return { workers: this.workers?.pids() ?? [] };
  }

  async burst(jobs: number, onDue?: () => void): Promise<BurstFigures> {
    const base = this.runSeq;
    this.runSeq += jobs;
    const due = Date.now() + 1000;
    await sleep(due - Date.now());
    onDue?.();
    const t0 = Date.now();
    for (let i = 0; i < jobs; i++) {
      const body = Buffer.from(
        JSON.stringify({
          run_id: (base + i).toString(16).padStart(32, '0'),
          job_id: i,
          command: 'true',
        }),
      );
      this.pub!.publish('', 'bench_jobs', body, { persistent: true });
    }
    await this.pub!.waitForConfirms();
    const target = base + jobs;
    const done = await pollUntil(
      async () => {
        const [rows] = (await this.pool!.query('SELECT COUNT(*) AS n FROM results')) as unknown as [
          [{ n: number }],
        ];
        return Number(rows[0].n);
      },
      target,
      t0 + 120_000,
    );
    const completionMs = done.at - t0;
    return {
      jobs,
      completionMs,
      runsPerSecond: (jobs / completionMs) * 1000,
      stored: done.last - base,
    };
  }

  async steady(): Promise<SteadyFigures> {
    throw new Error('the bare pipeline has no scheduler: it is measured on the burst only');
  }

  async teardown(): Promise<void> {
    await this.workers?.stop().catch(() => undefined);
    await this.conn?.close().catch(() => undefined);
    await this.pool?.end().catch(() => undefined);
    await deleteVhost(this.vhost);
    await dropMysqlDatabase(this.dbName).catch(() => undefined);
  }
}
